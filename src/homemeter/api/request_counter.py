"""The device's webServer statistics: requests answered below 400 and from 400 up.

Outermost, as on the device: the counter runs before authentication, so 401 challenges count as
errors; `exempt` routes (health) are not counted.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homemeter.api.services import RequestStats


class RequestCounter:
    """Pure ASGI: looks at the status of each response start, nothing else."""

    def __init__(self, app: ASGIApp, stats: RequestStats, exempt: Callable[[Scope], bool]) -> None:
        self.app = app
        self.stats = stats
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        stats = self.stats

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    stats.requests += 1
                else:
                    stats.errors += 1
            await send(message)

        await self.app(scope, receive, counting_send)
