"""`/mdns/*`: what is advertised over mDNS (names, addresses, ports, TXT) and the advertiser's settings.

Not a device endpoint: the device advertises a fixed name and has nothing to configure (reference
integrations.md 4). The settings follow `/modbus/config`: PUT replaces, PATCH changes some fields,
both applied live.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import ApiError, JSONBytes, merge, read_json, require_fields, success, validate
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.mdns import MdnsConfig

TAG = "mDNS"
BODY_LIMIT = 256  # three short fields


class AdvertisedService(BaseModel):
    kind: str  # "http" or "modbus"
    type: str  # "_http._tcp.local."
    name: str  # instance name; "-2" etc. when the configured one was taken
    port: int
    txt: dict[str, str]


class MdnsStatus(BaseModel):
    state: str  # running, degraded (advertising reaches no other host, or failed), disabled, starting
    lastError: str | None
    disabledBy: str | None  # "--no-mdns" or "configuration" when off
    hostname: str | None  # the name actually claimed, e.g. "homemeter-2.local"
    addresses: list[str]
    services: list[AdvertisedService]
    warnings: list[str]  # e.g. Home Assistant connects to port 80 but HTTP is elsewhere


def _status(svc: Services) -> MdnsStatus:
    status = svc.status("mdns")
    if status is None:  # a build without the advertiser
        return MdnsStatus(
            state="stopped", lastError=None, disabledBy=None, hostname=None, addresses=[], services=[],
            warnings=[],
        )  # fmt: skip
    d = status.details
    return MdnsStatus(
        state=status.state.value,
        lastError=status.last_error,
        disabledBy=d.get("disabledBy"),
        hostname=d.get("hostname"),
        addresses=list(d.get("addresses", [])),
        services=[AdvertisedService.model_validate(s) for s in d.get("services", [])],
        warnings=list(d.get("warnings", [])),
    )


def endpoints(svc: Services) -> list[Endpoint]:
    async def get_status(request: Request) -> Response:
        return JSONBytes(_status(svc).model_dump(mode="json"))

    async def get_config(request: Request) -> Response:
        return JSONBytes(svc.config.current.mdns.model_dump(mode="json"))

    async def put_config(request: Request) -> Response:
        doc = await read_json(request, BODY_LIMIT)
        require_fields(doc, MdnsConfig)
        await svc.config.update(mdns=validate(MdnsConfig, doc))
        return success("mDNS configuration updated successfully")

    async def patch_config(request: Request) -> Response:
        doc = await read_json(request, BODY_LIMIT)
        if not isinstance(doc, dict) or not doc:
            raise ApiError(400, "body: expected a JSON object with at least one field to change")
        current: dict[str, Any] = svc.config.current.mdns.model_dump(mode="json")
        await svc.config.update(mdns=validate(MdnsConfig, merge(current, doc)))
        return success("mDNS configuration updated successfully")

    live = (
        "Applied live: the advertisement is withdrawn (goodbye packets), renamed or updated within "
        "seconds; GET /mdns/status shows the result. --no-mdns overrides `enabled` at start."
    )
    E = Endpoint
    return [
        E("GET", "/mdns/status", get_status, "What is advertised over mDNS", TAG, response=MdnsStatus,
          description="The host name actually claimed (a taken name gets -2, -3...), the addresses "
          "advertised, each service with its port and TXT records, and warnings such as HTTP not "
          "being on port 80, the only port Home Assistant's EnergyMe integration connects to."),
        E("GET", "/mdns/config", get_config, "mDNS settings", TAG, response=MdnsConfig),
        E("PUT", "/mdns/config", put_config, "Replace the mDNS settings", TAG, body=MdnsConfig,
          errors=(400, 413), description=f"Every field is required. {live}"),
        E("PATCH", "/mdns/config", patch_config, "Change some mDNS settings", TAG, body=dict[str, Any],
          errors=(400, 413), description=f"As PUT, for the fields given. {live}"),
    ]  # fmt: skip
