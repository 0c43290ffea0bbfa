"""`/mdns/*`: what is advertised over mDNS (names, addresses, ports, TXT) and the advertiser's settings.

Not a device endpoint: the device advertises a fixed name and has nothing to configure (reference
integrations.md 4). The settings behave as every section's (`settings.config_endpoints`), applied
live.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.endpoints.settings import ConfigSection, config_endpoints
from homemeter.api.responses import JSONBytes
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.mdns import MdnsConfig

TAG = "mDNS"
BODY_LIMIT = 256  # three short fields
SETTINGS = ConfigSection(
    "mdns", "/mdns", "mDNS", "mDNS", MdnsConfig, BODY_LIMIT, TAG,
    applies="Applied live: the advertisement is withdrawn (goodbye packets), renamed or updated "
    "within seconds; GET /mdns/status shows the result. --no-mdns overrides `enabled` at start.",
)  # fmt: skip


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

    E = Endpoint
    return [
        E("GET", "/mdns/status", get_status, "What is advertised over mDNS", TAG, response=MdnsStatus,
          description="The host name actually claimed (a taken name gets -2, -3...), the addresses "
          "advertised, each service with its port and TXT records, and warnings such as HTTP not "
          "being on port 80, the only port Home Assistant's EnergyMe integration connects to."),
        *config_endpoints(svc, SETTINGS),
    ]  # fmt: skip
