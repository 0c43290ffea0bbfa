"""The HTTP application: routes from the endpoint table, error handlers and Digest auth, in one place."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from homemeter import __version__
from homemeter.api import web
from homemeter.api.digest_auth import DigestAuthMiddleware, FailureLimiter
from homemeter.api.endpoints import (
    auth,
    backup,
    chip,
    files,
    hardware,
    history,
    integrations,
    live,
    logs,
    mdns,
    meter,
    metrics,
    modbus,
    sources,
    system,
)
from homemeter.api.meter_values import FastRoute
from homemeter.api.metrics import Exposition
from homemeter.api.metrics_auth import MetricsRoute
from homemeter.api.openapi import openapi_document
from homemeter.api.request_counter import RequestCounter
from homemeter.api.responses import ApiError, error_response
from homemeter.api.routing import API, Endpoint, routes
from homemeter.api.services import Services
from homemeter.errors import ConfigRejected, StoreError

AREAS: tuple[Callable[[Services], list[Endpoint]], ...] = (
    system.endpoints,
    meter.endpoints,
    chip.endpoints,
    live.endpoints,
    integrations.endpoints,
    modbus.endpoints,
    mdns.endpoints,
    hardware.endpoints,
    files.endpoints,
    history.endpoints,
    backup.endpoints,
    auth.endpoints,
    logs.endpoints,
    metrics.endpoints,
    sources.endpoints,
)

SWAGGER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>homemeter API</title>
<link rel="stylesheet" href="/swagger-ui/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/swagger-ui/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""


def all_endpoints(svc: Services) -> list[Endpoint]:
    return [e for area in AREAS for e in area(svc)]


def _public(table: list[Endpoint]) -> Callable[[Scope], bool]:
    open_paths = {(e.method, e.url) for e in table if e.public}

    def exempt(scope: Scope) -> bool:
        return (scope.get("method"), scope.get("path")) in open_paths

    return exempt


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _rejected(request: Request, exc: Exception) -> Response:
    """A component refused a valid change (e.g. a port in use): nothing changed anywhere."""
    return error_response(409, f"{exc}; the previous settings stay in effect")


async def _not_saved(request: Request, exc: Exception) -> Response:
    """A change that could not be written (disk full, read-only): undone everywhere, 507."""
    return error_response(507, f"{exc}; the previous settings stay in effect")


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up while sending its body: nobody reads an answer, nothing to log."""
    return Response(status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return error_response(405, f"Method Not Allowed. Use {allowed}.", exc.headers)
    return error_response(exc.status_code, "Not found" if exc.status_code == 404 else exc.detail)


def build_app(svc: Services) -> ASGIApp:
    table = all_endpoints(svc)
    spec = orjson.dumps(openapi_document(table, __version__))
    spec_asset = web.Asset(spec, "application/json", time.time())  # validators: the UI's forms read it

    async def openapi(request: Request) -> Response:
        return spec_asset.response(request)

    async def swagger_yaml(request: Request) -> Response:
        # JSON is valid YAML: the device's /swagger.yaml path keeps working without a YAML encoder.
        return Response(spec, media_type="application/yaml")

    async def swagger(request: Request) -> Response:
        return HTMLResponse(SWAGGER_PAGE)

    app = Starlette(
        routes=[
            *routes(table),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/swagger.yaml", swagger_yaml, methods=["GET"]),
            Route("/swagger-ui", swagger, methods=["GET"]),
            Route("/docs", swagger, methods=["GET"]),
            Mount("/swagger-ui/static", StaticFiles(directory=swagger_ui_path), name="swagger"),
            *web.routes(),  # last: `/{page}` must not shadow the paths above
        ],
        exception_handlers={
            ApiError: _api_error,
            ConfigRejected: _rejected,
            HTTPException: _http_error,
            StoreError: _not_saved,
            ClientDisconnect: _client_gone,
        },
    )
    exempt = _public(table)
    limiter = FailureLimiter()
    # /metrics may have its own authentication (bearer, Basic, none): only it may skip Digest.
    scrape = MetricsRoute(app, Exposition(svc), lambda: svc.config.current.metrics, limiter)
    guarded = DigestAuthMiddleware(
        scrape,
        credentials=svc.credentials,
        exempt=lambda scope: exempt(scope) or scrape.bypasses_digest(scope),
        limiter=limiter,
    )
    counted = RequestCounter(guarded, svc.stats, exempt)
    # The meter-values poll skips the stack and the router (see FastRoute for why), same gate.
    return FastRoute(counted, f"{API}/ade7953/meter-values", svc.meter_values, guarded.admit, svc.stats)


__all__ = ["API", "build_app"]
