"""A stand-in for InfluxDB 2's write endpoint (no InfluxDB 2 or 3 can be installed here).

It checks what `POST /api/v2/write` checks and answers with InfluxDB's status codes and JSON bodies
(`{"code": ..., "message": ...}`): 401 for a missing or wrong token, 404 for an unknown organisation
or bucket, 400 for an unknown precision or a line that does not parse (nothing written), 413 for a
body above its limit, 422 for a partial write (a field whose type conflicts: the other lines are
written), and on request 429 or 503 with `Retry-After`. Accepted points are kept in arrival order.
Runs under uvicorn in a thread on a free loopback port; `should_exit` in `finally`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.loopback import free_port

PRECISIONS = {"ns", "us", "ms", "s"}

# One line: measurement, tags, fields, timestamp; backslash escapes; string fields in quotes.
_NAME = r"(?:\\.|[^\\ ,])+"
_KEY = r"(?:\\.|[^\\ ,=])+"
_VALUE = r'(?:"(?:\\.|[^\\"])*"|[^ ,"]+)'
_LINE = re.compile(
    rf"^(?P<measurement>{_NAME})(?P<tags>(?:,{_KEY}={_KEY})*) "
    rf"(?P<fields>{_KEY}={_VALUE}(?:,{_KEY}={_VALUE})*)(?: (?P<time>-?\d+))?$"
)
_NUMBER = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_PAIR = re.compile(rf"({_KEY})=({_VALUE})")


def _unescape(text: str) -> str:
    return re.sub(r"\\([ ,=\"\\])", r"\1", text)


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | str | bool | int]
    time: int

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        """Series and time: InfluxDB keeps one point per key (a second write overwrites it)."""
        return self.measurement, tuple(sorted(self.tags.items())), self.time


class ParseError(ValueError):
    pass


def parse_line(line: str) -> Point:
    m = _LINE.match(line)
    if m is None:
        raise ParseError(f"unable to parse '{line[:80]}': invalid line protocol")
    tags = {}
    for tag in _split(m["tags"][1:]):
        key, value = re.split(r"(?<!\\)=", tag, maxsplit=1)
        tags[_unescape(key)] = _unescape(value)
    if m["time"] is None:
        raise ParseError(f"unable to parse '{line[:80]}': homemeter always sends a timestamp")
    fields: dict[str, float | str | bool | int] = {}
    for key, raw in _PAIR.findall(m["fields"]):
        fields[_unescape(key)] = _field_value(raw, line)
    return Point(_unescape(m["measurement"]), tags, fields, int(m["time"]))


def _split(tags: str) -> list[str]:
    return [t for t in re.split(r"(?<!\\),", tags) if t] if tags else []


def _field_value(raw: str, line: str) -> float | str | bool | int:
    if raw.startswith('"'):
        return re.sub(r'\\(["\\])', r"\1", raw[1:-1])
    if raw in ("t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"):
        return raw.lower().startswith("t")
    if raw.endswith(("i", "u")) and raw[:-1].lstrip("-").isdigit():
        return int(raw[:-1])
    if _NUMBER.match(raw):
        return float(raw)
    raise ParseError(f"unable to parse '{line[:80]}': invalid number")


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status, headers=headers)


@dataclass
class Request2:
    """One write request as received, and what it was answered."""

    at: float
    status: int
    points: list[Point]


@dataclass
class Influx2StandIn:
    token: str = "tok-123"
    org: str = "home"
    bucket: str = "energy"
    max_body: int = 25_000_000  # bytes; InfluxDB 2's default limit is in this range
    port: int = field(default_factory=free_port)
    #: Answers to give before any check, oldest first: (status, Retry-After or None).
    scripted: list[tuple[int, str | None]] = field(default_factory=list)
    #: Lines for which this returns True are refused: 400 (nothing written) or 422 (the rest written).
    poison: Callable[[Point], bool] | None = None
    poison_status: int = 400
    requests: list[Request2] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/v2/write", self.write, methods=["POST"])])

    async def write(self, request: Request) -> Response:
        body = await request.body()
        response, accepted = self._answer(request, body)
        with self.lock:
            self.requests.append(Request2(time.monotonic(), response.status_code, accepted))
            self.points.extend(accepted)
        return response

    def _answer(self, request: Request, body: bytes) -> tuple[Response, list[Point]]:
        if self.scripted:
            status, retry = self.scripted.pop(0)
            words = {429: "too many requests", 503: "unavailable"}.get(status, "internal error")
            return error(status, words, f"stand-in: scripted {status}", **(
                {"Retry-After": retry} if retry else {})), []  # fmt: skip
        q = request.query_params
        if request.headers.get("authorization") != f"Token {self.token}":
            return error(401, "unauthorized", "unauthorized access"), []
        if q.get("org") != self.org:
            return error(404, "not found", f'organization name "{q.get("org")}" not found'), []
        if q.get("bucket") != self.bucket:
            return error(404, "not found", f'bucket "{q.get("bucket")}" not found'), []
        if q.get("precision", "ns") not in PRECISIONS:
            return error(400, "invalid", f'invalid precision "{q.get("precision")}"'), []
        if len(body) > self.max_body:
            return error(413, "request too large", "unable to read data: points batch is too large"), []
        try:
            points = [parse_line(line) for line in body.decode().split("\n") if line.strip()]
        except (ParseError, UnicodeDecodeError) as err:
            return error(400, "invalid", str(err)), []
        bad = [p for p in points if self.poison is not None and self.poison(p)]
        if bad and self.poison_status == 400:
            return error(400, "invalid", f"unable to parse point at time {bad[0].time}: stand-in poison"), []
        good = [p for p in points if p not in bad]
        if bad:
            return error(422, "unprocessable entity", f"failure writing points to database: partial "
                         f"write: field type conflict dropped={len(bad)}"), good  # fmt: skip
        return Response(status_code=204), good

    def snapshot(self) -> tuple[list[Request2], list[Point]]:
        with self.lock:
            return list(self.requests), list(self.points)


@contextmanager
def running(standin: Influx2StandIn, tls: tuple[Path, Path] | None = None) -> Iterator[Influx2StandIn]:
    """Serve `standin` (over HTTPS with `tls` = (certificate, key) PEM files) until the block ends."""
    certfile, keyfile = tls if tls else (None, None)
    config = uvicorn.Config(standin.app(), host="127.0.0.1", port=standin.port, log_level="warning",
                            lifespan="off", ssl_certfile=certfile, ssl_keyfile=keyfile)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="influx2-standin", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise AssertionError("the InfluxDB 2 stand-in did not start")
            time.sleep(0.01)
        yield standin
    finally:
        server.should_exit = True
        thread.join(10)
