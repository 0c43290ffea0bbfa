"""REST endpoints, one module per area; each exposes `endpoints(services) -> list[Endpoint]`."""
