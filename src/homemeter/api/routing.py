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
    """One Starlette route per path, so a wrong method gets 405 with every allowed method in Allow."""
    by_url: dict[str, dict[str, Handler]] = {}
    for e in endpoints:
        by_url.setdefault(e.url, {})[e.method] = e.handler
    return [_route(url, handlers) for url, handlers in by_url.items()]


def _route(url: str, handlers: dict[str, Handler]) -> Route:
    if len(handlers) == 1:
        ((method, handler),) = handlers.items()
        return Route(url, handler, methods=[method], name=f"{method} {url}")

    async def dispatch(request: Request) -> Response:
        # Starlette adds HEAD wherever GET is allowed; HEAD runs the GET handler (body dropped).
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return Route(url, dispatch, methods=list(handlers), name=url)
