"""The meter-values body: serialized once per snapshot, served by FastRoute exactly as the route would."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Scope, Send

from homemeter.api.meter_values import FastRoute, Gate
from homemeter.api.responses import JSONBytes, error_response
from homemeter.api.services import RequestStats
from homemeter.meter.payloads import SnapshotBytes, meter_values
from homemeter.meter.snapshot import MeterSnapshot
from tests.unit.sources import ConstantSource
from tests.unit.test_accounting import make_meter

PATH = "/api/v1/ade7953/meter-values"


def test_serialized_once_per_snapshot() -> None:
    meter = make_meter(ConstantSource(power={0: 100.0, 1: 50.0, 2: 25.0}))
    meter.simulate(5.0)
    renders: list[MeterSnapshot] = []

    def render(snapshot: MeterSnapshot) -> object:
        renders.append(snapshot)
        return meter_values(snapshot)

    cache = SnapshotBytes(lambda: meter.latest, render)
    first = cache.get()
    assert cache.get() is first and len(renders) == 1
    assert orjson.loads(first) == meter_values(meter.latest)
    meter.simulate(1.0)
    assert orjson.loads(cache.get()) == meter_values(meter.latest) != orjson.loads(first)
    assert len(renders) == 2


async def _admit(scope: Scope, send: Send) -> bool:
    return True


def _apps(gate: Gate = _admit) -> tuple[FastRoute, list[str]]:
    """FastRoute in front of a router whose meter-values handler records that it ran."""
    meter = make_meter(ConstantSource(power={0: 100.0, 1: 50.0, 2: 25.0}))
    meter.simulate(5.0)
    cache = SnapshotBytes(lambda: meter.latest, meter_values)
    routed: list[str] = []

    async def handler(request: Request) -> Response:
        routed.append(request.url.query)
        return JSONBytes(cache.get())

    router = Starlette(routes=[Route(PATH, handler, methods=["GET"])])
    return FastRoute(router, PATH, cache, gate, RequestStats()), routed


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


async def call(app: ASGIApp, target: str, method: str = "GET") -> Reply:
    path, _, query = target.partition("?")
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"meter")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return Reply(sent[0]["status"], dict(sent[0]["headers"]), body)


async def test_fast_path_answers_like_the_route() -> None:
    fast, routed = _apps()
    direct = await call(fast, PATH)
    assert routed == []  # answered in front of the router
    via_router = await call(fast, PATH + "?x=1")
    assert routed == ["x=1"]
    assert direct.status == via_router.status == 200
    assert direct.body == via_router.body
    assert len(orjson.loads(direct.body)) == 3
    assert direct.headers == via_router.headers
    assert direct.headers[b"content-type"] == b"application/json"
    assert direct.headers[b"content-length"] == b"%d" % len(direct.body)


async def test_other_methods_and_paths_reach_the_router() -> None:
    fast, routed = _apps()
    assert (await call(fast, PATH, "HEAD")).status == 200  # Starlette answers HEAD for GET routes
    assert (await call(fast, PATH, "POST")).status == 405
    assert (await call(fast, PATH + "/")).status in (307, 404)
    assert routed == [""]  # only the HEAD reached the handler


async def test_gate_refusal_is_answered_and_counted_as_an_error() -> None:
    """A refused poll gets the gate's own answer (Digest's 401), never the body; both are counted."""

    async def refuse(scope: Scope, send: Send) -> bool:
        await error_response(401, "Authentication required")(scope, _no_receive, send)
        return False

    fast, routed = _apps(refuse)
    refused = await call(fast, PATH)
    assert refused.status == 401 and b"voltage" not in refused.body
    assert (fast.stats.requests, fast.stats.errors) == (0, 1)
    admitted, _ = _apps()
    assert (await call(admitted, PATH)).status == 200
    assert (admitted.stats.requests, admitted.stats.errors) == (1, 0)
    assert routed == []


async def _no_receive() -> Message:
    return {"type": "http.request", "body": b""}
