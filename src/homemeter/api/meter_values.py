"""The meter-values poll served from ready bytes, before the router (see `FastRoute`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from homemeter.meter.payloads import SnapshotBytes


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
