"""`homemeter discover`: browse the network for homemeter and EnergyMe devices, list what they say.

The tool for "Home Assistant does not find it": it shows each device's name, addresses, ports and
TXT records as a client sees them. Devices are recognised by TXT `vendor` (`EnergyMe` on the device,
`EnergyMe` or `homemeter` here) or `model=homemeter`; `--all` lists every HTTP and Modbus service.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from homemeter.errors import MdnsUnavailable
from homemeter.integrations.mdns.records import HTTP_TYPE, MODBUS_TYPE, MODEL

KINDS = {HTTP_TYPE: "http", MODBUS_TYPE: "modbus"}
VENDORS = frozenset({"energyme", "homemeter"})
RESOLVE_MS = 1500  # a device that answers the browse answers a resolve well within this
TICK_S = 0.1  # progress refresh


@dataclass(frozen=True, slots=True)
class Found:
    """One resolved service."""

    kind: str  # "http" or "modbus"
    name: str  # instance name, e.g. "homemeter._http._tcp.local."
    host: str  # e.g. "homemeter.local."
    addresses: tuple[str, ...]
    port: int
    txt: dict[str, str]

    @property
    def ours(self) -> bool:
        """A homemeter or an EnergyMe device (by the TXT records Home Assistant also reads)."""
        return self.txt.get("vendor", "").lower() in VENDORS or self.txt.get("model", "") == MODEL


def _found(kind: str, info: AsyncServiceInfo) -> Found:
    txt = {k: v or "" for k, v in info.decoded_properties.items()}
    return Found(kind, info.name, info.server or "", tuple(info.parsed_addresses()), info.port or 0, txt)


async def browse(timeout: float, progress: Callable[[float, int], None] | None = None) -> list[Found]:
    """Every `_http._tcp` and `_modbus._tcp` service that answered within `timeout` seconds."""
    found: dict[str, Found] = {}
    pending: set[asyncio.Task[None]] = set()  # strong references: the loop keeps weak ones
    try:
        responder = AsyncZeroconf(ip_version=IPVersion.V4Only)
    except (OSError, RuntimeError) as err:  # RuntimeError: no interface has an IPv4 address
        raise MdnsUnavailable(f"cannot browse: no usable network interface ({err})") from err
    async with responder as azc:

        async def resolve(kind: str, type_: str, name: str) -> None:
            info = AsyncServiceInfo(type_, name)
            if await info.async_request(azc.zeroconf, RESOLVE_MS):
                found[name] = _found(kind, info)

        def changed(
            zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if state_change is ServiceStateChange.Removed:
                found.pop(name, None)
                return
            task = asyncio.create_task(resolve(KINDS[service_type], service_type, name))
            pending.add(task)
            task.add_done_callback(pending.discard)

        browser = AsyncServiceBrowser(azc.zeroconf, list(KINDS), handlers=[changed])
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < timeout:
                if progress is not None:
                    progress(elapsed, len(found))
                await asyncio.sleep(min(TICK_S, timeout - elapsed))
        finally:
            await browser.async_cancel()
        if pending:  # resolutions started late in the window finish, within their own timeout
            await asyncio.gather(*pending, return_exceptions=True)
    return sorted(found.values(), key=lambda f: (f.host, f.kind, f.name))


def _bar(timeout: float) -> Callable[[float, int], None]:
    def show(elapsed: float, count: int) -> None:
        width = 30
        done = int(width * min(elapsed / timeout, 1.0))
        bar = "#" * done + " " * (width - done)
        sys.stderr.write(f"\rbrowsing mDNS [{bar}] {elapsed:4.1f}/{timeout:g} s, {count} service(s)")
        sys.stderr.flush()

    return show


def describe(services: list[Found]) -> str:
    """Human-readable: one block per host, its addresses, then each service with port and TXT."""
    lines: list[str] = []
    hosts: dict[str, list[Found]] = {}
    for s in services:
        hosts.setdefault(s.host, []).append(s)
    for host, items in hosts.items():
        addresses = sorted({a for s in items for a in s.addresses})
        lines.append(f"{host.rstrip('.')}  {', '.join(addresses) or '(no address)'}")
        for s in items:
            txt = " ".join(f"{k}={v}" for k, v in s.txt.items())
            lines.append(f"  {s.kind:<6} port {s.port:<5} {s.name}")
            lines.append(f"         {txt}")
    return "\n".join(lines)


def run(timeout: float, show_all: bool, as_json: bool) -> int:
    """The command: browse, print, and the number of devices' services found."""
    bar = _bar(timeout) if sys.stderr.isatty() and not as_json else None
    services = asyncio.run(browse(timeout, bar))
    if bar is not None:
        sys.stderr.write("\n")
    shown = [s for s in services if show_all or s.ours]
    if as_json:
        print(json.dumps([asdict(s) for s in shown], indent=2))
    elif shown:
        print(describe(shown))
    else:
        others = f" ({len(services)} other HTTP/Modbus service(s); --all lists them)" if services else ""
        print(
            f"no homemeter or EnergyMe device answered within {timeout:g} s{others}. Check that the "
            "service runs with mDNS on (GET /api/v1/mdns/status), that this computer is on the same "
            "network segment (mDNS does not cross routers), that no firewall drops UDP port 5353, "
            "or try a longer --timeout.",
            file=sys.stderr,
        )
    return len(shown)
