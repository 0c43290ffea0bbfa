"""`/health` and the other system endpoints."""

from __future__ import annotations

import time

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import JSONBytes
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services

TAG = "System"


def iso_time(epoch: float) -> str:
    """The device's timestamp format: ISO 8601 UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


class Health(BaseModel):
    status: str
    uptime: int  # ms, as the device (its swagger says seconds; the code sends ms)
    timestamp: str


def endpoints(svc: Services) -> list[Endpoint]:
    async def health(request: Request) -> Response:
        uptime_ms = int((time.monotonic() - svc.started_monotonic) * 1000)
        return JSONBytes({"status": "ok", "uptime": uptime_ms, "timestamp": iso_time(time.time())})

    return [
        Endpoint(
            "GET",
            "/health",
            health,
            "Liveness (no authentication)",
            TAG,
            response=Health,
            public=True,
        ),
    ]
