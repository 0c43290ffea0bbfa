"""`/ade7953/meter-values/stream`: the meter values pushed once a second as server-sent events.

The dashboard's live view: one long response instead of a Digest-authenticated poll per second. It
follows the meter's latest-only snapshot stream, so a slow browser skips values and never holds the
meter back, and sends the same bytes as `GET /ade7953/meter-values` (the one cached body). Without
`Accept: text/event-stream` (a script, the every-GET poll) it answers that body once, as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from homemeter.api.endpoints.meter import TAG, ChannelMeterValues
from homemeter.api.responses import JSONBytes
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.meter.snapshot import MeterSnapshot

EVENT_STREAM = "text/event-stream"
PERIOD_S = 1.0  # at most one event a second: the dashboard's refresh, as the device's page polls
RETRY_MS = 2000  # how long a browser waits before reconnecting a dropped stream


async def meter_events(svc: Services, period: float = PERIOD_S) -> AsyncIterator[bytes]:
    """`data: <meter-values JSON>` events, at most one per `period`, until the service stops."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.ensure_future(svc.restart.stopping())
    snapshots = svc.meter.snapshots()
    following: asyncio.Future[MeterSnapshot] | None = None
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        while True:
            following = asyncio.ensure_future(anext(snapshots))
            await asyncio.wait((following, stopping), return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                return
            sent = loop.time()
            yield b"data: " + svc.meter_values.get() + b"\n\n"
            # Snapshots arriving meanwhile are skipped: the next one read is the newest.
            await asyncio.wait((stopping,), timeout=max(0.0, period - (loop.time() - sent)))
    finally:
        stopping.cancel()
        if following is not None and not following.done():
            following.cancel()  # the generator must be idle before it can be closed
            with contextlib.suppress(asyncio.CancelledError):
                await following
        if isinstance(snapshots, AsyncGenerator):  # the meter's is; the view promises an iterator
            await snapshots.aclose()


def endpoints(svc: Services) -> list[Endpoint]:
    async def stream(request: Request) -> Response:
        if EVENT_STREAM not in request.headers.get("accept", ""):
            return JSONBytes(svc.meter_values.get())
        return StreamingResponse(
            meter_events(svc),
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},  # proxies: don't buffer
        )

    return [
        Endpoint(
            "GET",
            "/ade7953/meter-values/stream",
            stream,
            "Meter values, pushed every second (server-sent events)",
            TAG,
            response=list[ChannelMeterValues],
            description="With `Accept: text/event-stream`: an event stream whose every `data:` line is "
            "the body of GET /ade7953/meter-values, at most once a second, newest values only; it "
            "ends when the service stops (browsers reconnect by themselves). Otherwise that body "
            "once, as JSON.",
        )
    ]
