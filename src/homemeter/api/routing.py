"""One table of endpoints: it builds the Starlette routes and the OpenAPI document alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]
API = "/api/v1"


@dataclass(frozen=True)
class Query:
    """A query parameter, documented with its JSON schema."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One method on one path. `body` and `response` are types pydantic can describe."""

    method: str
    path: str  # below /api/v1, e.g. "/ade7953/channel"
    handler: Handler
    summary: str
    tag: str
    body: Any = None  # request body type; None: no body
    response: Any = None  # 200 body type; None: the SuccessResponse envelope
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()  # documented error statuses besides 401/429
    media_type: str = "application/json"
    public: bool = False  # no authentication (only health, as on the device)
    description: str = ""

    @property
    def url(self) -> str:
        return API + self.path


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    """Starlette routes; several methods on one path answer 405 for the others."""
    return [Route(e.url, e.handler, methods=[e.method], name=f"{e.method} {e.path}") for e in endpoints]
