"""Persistent state: configuration, energy counters and credentials, each written atomically."""
