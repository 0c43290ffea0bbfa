"""`/metrics/config`: how `GET /metrics` (Prometheus, outside /api/v1) is authenticated.

Not a device endpoint. The token and password read as `PLACEHOLDER`; sending that back keeps the
stored one. A change applies to the next scrape (the `/metrics` route reads the live settings).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import ApiError, JSONBytes, merge, read_json, require_fields, success, validate
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.metrics import MetricsConfig
from homemeter.config.secrets import PLACEHOLDER, unmask

TAG = "Metrics"
BODY_LIMIT = 512  # four short fields and a token of at most 127 characters


def endpoints(svc: Services) -> list[Endpoint]:
    def stored() -> MetricsConfig:
        return svc.config.current.metrics

    async def save(doc: dict[str, Any]) -> None:
        await svc.config.update(metrics=validate(MetricsConfig, unmask(doc, stored())))

    async def get_config(request: Request) -> Response:
        return JSONBytes(stored().model_dump(mode="json"))

    async def put_config(request: Request) -> Response:
        doc = await read_json(request, BODY_LIMIT)
        require_fields(doc, MetricsConfig)
        await save(doc)
        return success("Metrics configuration updated successfully")

    async def patch_config(request: Request) -> Response:
        doc = await read_json(request, BODY_LIMIT)
        if not isinstance(doc, dict) or not doc:
            raise ApiError(400, "body: expected a JSON object with at least one field to change")
        # The stored secrets stay SecretStr in the merge, so an untouched one is kept as it is.
        await save(merge(dict(stored()), doc))
        return success("Metrics configuration updated successfully")

    masked = (
        f'The token and password read as {PLACEHOLDER!r} (empty ones as ""); send that back to keep them.'
    )
    modes = (
        "`auth` applies to GET /metrics only (every other path keeps Digest): `digest` (default), "
        "`bearer` (Authorization: Bearer <token>), `basic` (username and password) or `none`. "
        "Applied to the next scrape; wrong credentials count as failed logins."
    )
    E = Endpoint
    return [
        E("GET", "/metrics/config", get_config, "Prometheus /metrics settings", TAG,
          response=MetricsConfig, description=f"{modes} {masked}"),
        E("PUT", "/metrics/config", put_config, "Replace the Prometheus /metrics settings", TAG,
          body=MetricsConfig, errors=(400, 413), description=f"Every field is required. {masked}"),
        E("PATCH", "/metrics/config", patch_config, "Change some Prometheus /metrics settings", TAG,
          body=dict[str, Any], errors=(400, 413), description=f"As PUT, for the fields given. {masked}"),
    ]  # fmt: skip
