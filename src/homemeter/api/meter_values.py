"""The meter-values payload, serialized once per snapshot and served as ready bytes.

The body changes once per snapshot (5/s) but is requested far more often (dashboards poll every
second, Home Assistant every 10 s, benchmarks thousands of times a second), so it is built lazily the
first time a request sees a new snapshot and then reused, and `FastRoute` serves it without the router.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from homemeter.meter.snapshot import (
    METER_VALUE_FIELDS,
    ChannelReading,
    MeterSnapshot,
    round_half_away,
)

_JSON = (b"content-type", b"application/json")
_FIELDS = tuple((q.key, q.attr, q.decimals) for q in METER_VALUE_FIELDS)


def channel_values(reading: ChannelReading) -> dict[str, float]:
    """The `data` object of one channel, rounded as the device rounds, in the device's key order."""
    return {key: round_half_away(getattr(reading, attr), d) for key, attr, d in _FIELDS}


def meter_values(snapshot: MeterSnapshot) -> list[dict[str, object]]:
    """The `GET /api/v1/ade7953/meter-values` array (also the MQTT payload)."""
    return [
        {
            "index": c.index,
            "label": c.label,
            "phase": int(c.phase),
            "groupLabel": c.group_label,
            "role": c.role.value,
            "data": channel_values(c),
        }
        for c in snapshot.with_readings()
    ]


class SnapshotBytes:
    """Caches `render(snapshot)` as JSON bytes for the latest snapshot only.

    Keyed on the snapshot object, not `seq`: a restarted meter (or a test) may reuse a sequence number.
    """

    def __init__(self, latest: Callable[[], MeterSnapshot], render: Callable[[MeterSnapshot], object]):
        self._latest = latest
        self._render = render
        self._snapshot: MeterSnapshot | None = None
        self._body = b""
        self._headers: list[tuple[bytes, bytes]] = []

    def get(self) -> bytes:
        return self.response()[0]

    def response(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The body and its ASGI headers, as Starlette's Response would send them."""
        snap = self._latest()
        if snap is not self._snapshot:
            self._body = orjson.dumps(self._render(snap))
            self._headers = [(b"content-length", b"%d" % len(self._body)), _JSON]
            self._snapshot = snap
        return self._body, self._headers


class FastRoute:
    """Serves one GET route from ready bytes before Starlette's router sees the request.

    Mounted inside the Digest middleware, so authentication is unchanged. Routing over ~100 routes,
    the Request object and the Response class cost more than the Digest check for the meter-values
    poll (dashboards every second, Home Assistant every 10 s). bench/http.py, 32 connections, 5 x 8 s:
    62 us of server CPU per request here against 106 us through the router (12.2k vs 8.9k req/s
    median), bare Starlette without auth 51 us (16.4k req/s); see bench/README.md.
    Anything else (a query string, HEAD, another path) goes to `app`.
    """

    def __init__(self, app: ASGIApp, path: str, body: SnapshotBytes) -> None:
        self.app = app
        self.path = path
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.path
            and scope["method"] == "GET"
            and not scope["query_string"]
        ):
            body, headers = self.body.response()
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
