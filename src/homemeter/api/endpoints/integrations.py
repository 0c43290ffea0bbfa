"""`/custom-mqtt/*` and `/influxdb/*`: the settings of the two publishers, and their status.

PUT replaces the whole object (every field, right JSON type), PATCH changes the fields given; unknown
keys are ignored as on the device (reference rest-api.md 0.4; older web pages send extra ones). Both
validate the whole object and fail with 400 naming the field, where the device only says "Invalid ...".
Passwords and tokens read as `PLACEHOLDER` (store/secrets.py); sending that back keeps the stored one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import ApiError, JSONBytes, read_json, require_fields, success, validate
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.app import AppConfig
from homemeter.config.extension import extension_fields
from homemeter.config.influxdb import InfluxDbConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.config.secrets import PLACEHOLDER, unmask
from homemeter.timestamps import iso_time


class GenericStatus(BaseModel):
    """The device's integration status: a text and the second it was set (ISO 8601, `.000Z`)."""

    status: str
    statusTimestamp: str


@dataclass(frozen=True)
class Section:
    """One integration's settings: where they live in `AppConfig` and how the device words them."""

    key: str  # AppConfig field
    path: str  # URL prefix below /api/v1
    title: str  # OpenAPI tag, and the device's messages: "<title> configuration updated successfully"
    model: type[BaseModel]
    limit: int  # body bytes (reference rest-api.md 0.3)
    waiting: str  # the status while enabled: no publisher runs in this release


MQTT = Section(
    "mqtt",
    "/custom-mqtt",
    "Custom MQTT",
    MqttConfig,
    512,
    "Not connected: the MQTT publisher is not available in this release",
)
INFLUXDB = Section(
    "influxdb",
    "/influxdb",
    "InfluxDB",
    InfluxDbConfig,
    1024,
    "No data sent: the InfluxDB writer is not available in this release",
)


class StatusClock:
    """When a section's status last changed: at start, then at every change of its settings."""

    def __init__(self, key: str) -> None:
        self._key = key
        self.since = time.time()

    async def __call__(self, old: AppConfig, new: AppConfig) -> None:
        if getattr(old, self._key) != getattr(new, self._key):
            self.since = time.time()


def _object(doc: Any, section: Section) -> dict[str, Any]:
    """The recognised keys of a JSON object body (unknown keys are ignored, as on the device)."""
    if not isinstance(doc, dict):
        raise ApiError(400, "body: expected a JSON object")
    return {k: v for k, v in doc.items() if k in section.model.model_fields}


def section_endpoints(svc: Services, section: Section) -> list[Endpoint]:
    """GET/PUT/PATCH config, POST config/reset and GET status for one integration."""
    # Until a publisher reports its own status, the only status change is a settings change.
    clock = StatusClock(section.key)
    svc.config.subscribe(f"{section.key}-status", clock)

    def stored() -> BaseModel:
        current: BaseModel = getattr(svc.config.current, section.key)
        return current

    async def save(doc: dict[str, Any]) -> None:
        try:
            new = validate(section.model, unmask(doc, stored()))
        except ApiError as err:
            raise ApiError(400, f"Invalid {section.title} configuration: {err.message}") from err
        await svc.config.update(**{section.key: new})

    async def get_config(request: Request) -> Response:
        return JSONBytes(stored().model_dump(mode="json"))

    async def put_config(request: Request) -> Response:
        doc = _object(await read_json(request, section.limit), section)
        # Fields homemeter added are optional: the device's own clients send only its fields.
        doc = {name: getattr(stored(), name) for name in extension_fields(section.model)} | doc
        require_fields(doc, section.model)
        await save(doc)
        return success(f"{section.title} configuration updated successfully")

    async def patch_config(request: Request) -> Response:
        doc = _object(await read_json(request, section.limit), section)
        if not doc:
            fields = ", ".join(section.model.model_fields)
            raise ApiError(400, f"body: no field to change; recognised fields: {fields}")
        await save(dict(stored()) | doc)  # dict(model): field values as they are, secrets still SecretStr
        return success(f"{section.title} configuration updated successfully")

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
        enabled = getattr(stored(), "enabled", False)
        text = section.waiting if enabled else "Disabled"
        return JSONBytes({"status": text, "statusTimestamp": iso_time(int(clock.since))})

    masked = f'Passwords and tokens read as {PLACEHOLDER!r} (empty ones as ""); send that back to keep them.'
    E = Endpoint
    config, name, tag = f"{section.path}/config", section.title, section.title
    return [
        E("GET", config, get_config, f"{name} settings", tag, response=section.model,
          description=masked),
        E("PUT", config, put_config, f"Replace the {name} settings", tag, body=section.model,
          errors=(400, 413),
          description=f"Every field is required, except those marked x-extension (homemeter's own: "
                      f"left out, they keep their stored value). {masked}"),
        E("PATCH", config, patch_config, f"Change some {name} settings", tag,
          body=dict[str, Any], errors=(400, 413), description=masked),
        E("POST", f"{config}/reset", reset_config, f"Restore the {name} defaults", tag),
        E("GET", f"{section.path}/status", get_status, f"{name} status", tag,
          response=GenericStatus,
          description="`Disabled`, or why nothing is sent; the time is that of the last change."),
    ]  # fmt: skip


def endpoints(svc: Services) -> list[Endpoint]:
    return section_endpoints(svc, MQTT) + section_endpoints(svc, INFLUXDB)
