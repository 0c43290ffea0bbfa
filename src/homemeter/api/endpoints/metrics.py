"""`/metrics/config`: how `GET /metrics` (Prometheus, outside /api/v1) is authenticated.

Not a device endpoint. The token and password read as `PLACEHOLDER`; sending that back keeps the
stored one. A change applies to the next scrape (the `/metrics` route reads the live settings).
"""

from __future__ import annotations

from homemeter.api.endpoints.settings import ConfigSection, config_endpoints
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.metrics import MetricsConfig

TAG = "Metrics"
BODY_LIMIT = 512  # four short fields and a token of at most 127 characters
SETTINGS = ConfigSection(
    "metrics", "/metrics", "Metrics", "Prometheus /metrics", MetricsConfig, BODY_LIMIT, TAG,
    applies="`auth` applies to GET /metrics only (every other path keeps Digest): `digest` (default), "
    "`bearer` (Authorization: Bearer <token>), `basic` (username and password) or `none`. "
    "Applied to the next scrape; wrong credentials count as failed logins.",
)  # fmt: skip


def endpoints(svc: Services) -> list[Endpoint]:
    return config_endpoints(svc, SETTINGS)
