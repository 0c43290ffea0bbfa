"""The HTTP application: routes, error handlers and Digest authentication, built in one place."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from homemeter.api.digest_auth import DigestAuthMiddleware, FailureLimiter
from homemeter.api.meter_values import SnapshotBytes, channel_values, meter_values
from homemeter.meter.sampler import Meter
from homemeter.store.credentials import Credentials

API = "/api/v1"


@dataclass(frozen=True)
class ApiContext:
    """What the HTTP layer may use: the meter (read its snapshots) and the credentials."""

    meter: Meter
    credentials: Callable[[], Credentials]
    device_id: str
    started_monotonic: float


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def error(status: int, message: str) -> JSONResponse:
    """The device's ErrorResponse envelope."""
    return JSONResponse({"success": False, "error": message}, status_code=status)


def _is_exempt(scope: Scope) -> bool:
    return scope.get("method") == "GET" and scope.get("path") == f"{API}/health"


def build_app(ctx: ApiContext) -> ASGIApp:
    meter = ctx.meter
    all_values = SnapshotBytes(lambda: meter.latest, meter_values)

    async def health(request: Request) -> Response:
        uptime_ms = int((time.monotonic() - ctx.started_monotonic) * 1000)
        return JSONResponse({"status": "ok", "uptime": uptime_ms, "timestamp": iso_now()})

    async def get_meter_values(request: Request) -> Response:
        raw = request.query_params.get("index")
        if raw is None:
            # 200 [] before the first reading: the device's 500 breaks Home Assistant's first refresh.
            return Response(all_values.get(), media_type="application/json")
        if not raw.isdigit() or int(raw) >= meter.channel_count:
            return error(400, "Invalid channel index")
        return JSONResponse(channel_values(meter.latest.channels[int(raw)]))

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, "Not found" if exc.status_code == 404 else str(exc.detail))

    app = Starlette(
        routes=[
            Route(f"{API}/health", health, methods=["GET"]),
            Route(f"{API}/ade7953/meter-values", get_meter_values, methods=["GET"]),
        ],
        exception_handlers={HTTPException: not_found},
    )
    return DigestAuthMiddleware(
        app, credentials=ctx.credentials, exempt=_is_exempt, limiter=FailureLimiter()
    )
