"""Run in the client namespace by the mDNS tests: browse both service types, print every event resolved.

One JSON object per line: event (added, updated, removed), kind (http, modbus), name, and for added and
updated ones host, addresses, port and txt. "browsing" alone on a line once the browser runs.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

KINDS = {"_http._tcp.local.": "http", "_modbus._tcp.local.": "modbus"}


def emit(doc: dict[str, Any]) -> None:
    print(json.dumps(doc), flush=True)


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    async with AsyncZeroconf(ip_version=IPVersion.V4Only) as azc:

        async def resolve(event: str, type_: str, name: str) -> None:
            info = AsyncServiceInfo(type_, name)
            if not await info.async_request(azc.zeroconf, 3000):
                emit({"event": "unresolved", "kind": KINDS[type_], "name": name})
                return
            emit({
                "event": event, "kind": KINDS[type_], "name": name, "host": info.server,
                "addresses": sorted(info.parsed_addresses()), "port": info.port,
                "txt": {k: v for k, v in info.decoded_properties.items()},
            })  # fmt: skip

        def changed(
            zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            event = state_change.name.lower()
            if state_change is ServiceStateChange.Removed:
                emit({"event": event, "kind": KINDS[service_type], "name": name})
                return
            task = asyncio.create_task(resolve(event, service_type, name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        browser = AsyncServiceBrowser(azc.zeroconf, list(KINDS), handlers=[changed])
        print("browsing", flush=True)
        await stop.wait()
        await browser.async_cancel()


if __name__ == "__main__":
    asyncio.run(main())
