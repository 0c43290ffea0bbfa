"""InfluxDB uploads over HTTP line protocol, v1 or v2 (reference integrations.md 3).

This release has the configuration only; the writer comes later.
"""

from homemeter.config.influxdb import InfluxDbConfig

__all__ = ["InfluxDbConfig"]
