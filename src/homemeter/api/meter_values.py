"""The meter-values poll served from ready bytes, in front of every middleware (see `FastRoute`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from homemeter.api.services import RequestStats
from homemeter.meter.payloads import SnapshotBytes

#: Lets a request through (True) or has already answered it (401, 429): Digest's `admit`.
Gate = Callable[[Scope, Send], Awaitable[bool]]


class FastRoute:
    """Serves one GET route from ready bytes before the middleware stack and the router see it.

    The outermost application: it runs the same Digest gate and counts the answer in the same
    webServer statistics as the stack behind it would, but without a layer per concern. Routing
    over ~100 routes, the Request object and the Response class cost more than the Digest check
    for the meter-values poll (dashboards every second, Home Assistant every 10 s), and each ASGI
    layer (request counter, Digest, /metrics) adds a coroutine and a wrapped `send`.
    bench/http.py, 32 connections: see bench/README.md for the figures against bare Starlette.
    Anything else (a query string, HEAD, another path) goes to `app`.
    """

    def __init__(self, app: ASGIApp, path: str, body: SnapshotBytes, gate: Gate, stats: RequestStats) -> None:
        self.app = app
        self.path = path
        self.body = body
        self.gate = gate
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.path
            and scope["method"] == "GET"
            and not scope["query_string"]
        ):
            if not await self.gate(scope, send):
                self.stats.errors += 1
                return
            self.stats.requests += 1
            body, headers = self.body.response()
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
