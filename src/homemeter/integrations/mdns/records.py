"""What is advertised: the two DNS-SD services, their TXT records, and the names they go under.

TXT keys and values follow the device (reference integrations.md 4), since Home Assistant's
integration reads `vendor`, `device_id`, `model` and `version` (5). Where we differ, on purpose:
`model` is `homemeter` (the device says `Home`; Home Assistant only displays it, and `homemeter
discover` tells the two apart by it), `version` is ours, and `channels` is the real channel count
(the device hard-codes `16`, even on a 17-channel board).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from homemeter import __version__
from homemeter.config.mdns import HOME_ASSISTANT_VENDOR

HTTP_TYPE = "_http._tcp.local."
MODBUS_TYPE = "_modbus._tcp.local."
MODEL = "homemeter"
#: Home Assistant's integration connects to `http://<host>` whatever port is advertised (reference 5).
HOME_ASSISTANT_PORT = 80
MAX_LABEL = 63  # RFC 1035 2.3.4


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service as it should be advertised: type, port and TXT records (instance name aside)."""

    kind: str  # "http" or "modbus": the key in the status and in `homemeter discover`
    type: str
    port: int
    txt: Mapping[str, str]


def common_txt(device_id: str, vendor: str) -> dict[str, str]:
    """The keys both services carry."""
    return {"device_id": device_id, "vendor": vendor, "model": MODEL, "version": __version__}


def http_service(port: int, device_id: str, vendor: str) -> ServiceSpec:
    txt = common_txt(device_id, vendor) | {"path": "/", "auth": "required", "ssl": "false"}
    return ServiceSpec("http", HTTP_TYPE, port, MappingProxyType(txt))


def modbus_service(port: int, device_id: str, vendor: str, channels: int) -> ServiceSpec:
    txt = common_txt(device_id, vendor) | {"channels": str(channels)}
    return ServiceSpec("modbus", MODBUS_TYPE, port, MappingProxyType(txt))


def numbered(label: str, n: int) -> str:
    """The n-th alternative of a taken name, as zeroconf renames instances: `homemeter-2`, `-3`..."""
    if n <= 1:
        return label
    suffix = f"-{n}"
    return label[: MAX_LABEL - len(suffix)] + suffix


def home_assistant_notice(http_port: int, vendor: str) -> str | None:
    """Why Home Assistant will discover this host and still fail to reach it, or None if it can."""
    if vendor.lower() != HOME_ASSISTANT_VENDOR.lower() or http_port == HOME_ASSISTANT_PORT:
        return None
    return (
        f"HTTP is on port {http_port}, but Home Assistant's EnergyMe integration ignores the "
        f"advertised port and connects to port {HOME_ASSISTANT_PORT}: run homemeter on port "
        f"{HOME_ASSISTANT_PORT} (see the README, 'mDNS and Home Assistant')"
    )
