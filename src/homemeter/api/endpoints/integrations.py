"""`/custom-mqtt/*` and `/influxdb/*`: the settings of the two publishers, and their status.

The settings endpoints behave as every section's (`settings.config_endpoints`): unknown keys are
ignored as on the device, and a bad value fails with 400 naming the field, where the device only says
"Invalid ...". Passwords and tokens read as `PLACEHOLDER`; sending that back keeps the stored one.
"""

from __future__ import annotations

import time

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.endpoints.settings import ConfigSection, config_endpoints
from homemeter.api.responses import JSONBytes, success
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.app import AppConfig
from homemeter.config.influxdb import InfluxDbConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.timestamps import iso_time


class GenericStatus(BaseModel):
    """The device's integration status: a text and the second it was set (ISO 8601, `.000Z`)."""

    status: str
    statusTimestamp: str


# The device's two integration sections: unknown keys ignored, the device's wording.
MQTT = ConfigSection("mqtt", "/custom-mqtt", "Custom MQTT", "Custom MQTT", MqttConfig, 512, "Custom MQTT",
                     device=True)  # fmt: skip
INFLUXDB = ConfigSection("influxdb", "/influxdb", "InfluxDB", "InfluxDB", InfluxDbConfig, 1024, "InfluxDB",
                         device=True)  # fmt: skip
# The status while enabled and before the component reports its own words.
WAITING = {
    "mqtt": "Not connected: the MQTT publisher is not available in this release",
    "influxdb": "No data sent: the InfluxDB writer is not available in this release",
}


class StatusClock:
    """When a section's status last changed: at start, then at every change of its settings."""

    def __init__(self, key: str) -> None:
        self._key = key
        self.since = time.time()

    async def __call__(self, old: AppConfig, new: AppConfig) -> None:
        if getattr(old, self._key) != getattr(new, self._key):
            self.since = time.time()


def section_endpoints(svc: Services, section: ConfigSection) -> list[Endpoint]:
    """The settings (see `settings.config_endpoints`), POST config/reset and GET status of one integration."""
    # Until a publisher reports its own status, the only status change is a settings change.
    clock = StatusClock(section.key)
    svc.config.subscribe(f"{section.key}-status", clock)

    async def reset_config(request: Request) -> Response:
        await svc.config.update(**{section.key: section.model()})
        return success(f"{section.title} configuration reset successfully")

    async def get_status(request: Request) -> Response:
        # The component's own words when it has them (details "status" and "statusTime", epoch s).
        status = svc.status(section.key)
        if status is not None and "status" in status.details:
            since = float(status.details.get("statusTime", status.since))
            return JSONBytes({**status.details, "status": status.details["status"],
                              "statusTimestamp": iso_time(int(since))})  # fmt: skip
        enabled = getattr(getattr(svc.config.current, section.key), "enabled", False)
        text = WAITING[section.key] if enabled else "Disabled"
        return JSONBytes({"status": text, "statusTimestamp": iso_time(int(clock.since))})

    name, tag = section.title, section.tag
    E = Endpoint
    return [
        *config_endpoints(svc, section),
        E("POST", f"{section.path}/config/reset", reset_config, f"Restore the {name} defaults", tag),
        E("GET", f"{section.path}/status", get_status, f"{name} status", tag,
          response=GenericStatus,
          description="`Disabled`, or why nothing is sent; the time is that of the last change."),
    ]  # fmt: skip


def endpoints(svc: Services) -> list[Endpoint]:
    return section_endpoints(svc, MQTT) + section_endpoints(svc, INFLUXDB)
