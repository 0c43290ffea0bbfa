"""Slow and hostile clients: the service stays responsive for everyone else.

- 200 idle TCP connections on the Modbus port: those over `maxClients` are closed at once, the rest
  after the idle timeout; HTTP answers meanwhile and a Modbus client reads afterwards.
- slowloris: request heads sent a byte at a time, and connections that send nothing: closed by the
  server after its head timeout, while other requests are answered.
- bodies over the size limits: 413, also for a chunked body, answered before the body is sent.
- bodies under the limits trickled a byte a second (declared length or chunked): 408 after the
  body grace time, while other requests are answered.
- thousands of failed logins from one address: 401 then 429 with Retry-After, never a 200 or a 5xx;
  the real user on another address (127.0.0.2) still logs in.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from homemeter.api.http_protocol import BODY_GRACE, HEAD_TIMEOUT
from tests.loopback import PASSWORD
from tests.reliability.clients import closed_by_peer, modbus_read
from tests.reliability.report import Row, Tally
from tests.reliability.service import Homemeter

AREA = "hostile"
PROBE_PATHS = ("/api/v1/health", "/api/v1/ade7953/meter-values")


@dataclass
class Probe:
    """A real user polling every 0.2 s while the hostile clients are busy."""

    tally: Tally

    @property
    def figures(self) -> str:
        ok, tried = self.tally["ok"], self.tally["tried"]
        slowest = self.tally.maxima.get("s", 0) * 1000
        return f"user's requests meanwhile {ok}/{tried} ok, slowest {slowest:.0f} ms"

    @property
    def held(self) -> bool:
        return self.tally["tried"] > 0 and self.tally["ok"] == self.tally["tried"]


@contextmanager
def probing(svc: Homemeter, source: str | None = None) -> Iterator[Probe]:
    stop, tally = threading.Event(), Tally()
    session = svc.session(source)

    def run() -> None:
        n = 0
        while not stop.wait(0.2):
            n += 1
            started = time.monotonic()
            tally.add("tried")
            try:
                if session.get(svc.url + PROBE_PATHS[n % 2], timeout=5).status_code == 200:
                    tally.add("ok")
            except OSError:
                pass
            tally.peak("s", time.monotonic() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield Probe(tally)
    finally:
        stop.set()
        thread.join(10)
        session.close()


def idle_modbus(svc: Homemeter, connections: int = 200, idle_timeout: float = 2.0) -> list[Row]:
    r = svc.request("PATCH", "/api/v1/modbus/config", json={"idleTimeout": idle_timeout})
    assert r.status_code == 200, r.text
    max_clients = svc.get("/api/v1/modbus/config").json()["maxClients"]
    with probing(svc) as probe:
        socks = [
            socket.create_connection(("127.0.0.1", svc.modbus_port), timeout=5) for _ in range(connections)
        ]
        time.sleep(0.5)
        readable, _, _ = select.select(socks, [], [], 0)
        at_once = [s for s in readable if closed_by_peer(s, 0.1)]
        held_open = [s for s in socks if s not in at_once]
        started = time.monotonic()
        by_idle = sum(closed_by_peer(s, idle_timeout + 3) for s in held_open)
        waited = time.monotonic() - started
        for s in socks:
            s.close()
    with socket.create_connection(("127.0.0.1", svc.modbus_port), timeout=5) as sock:
        read_after = len(modbus_read(sock, 1, 0, 8)) == 16
    note = (
        f"{len(at_once)} closed at once (maxClients {max_clients}), {by_idle} after the "
        f"{idle_timeout:.0f} s idle timeout (all within {waited:.1f} s); {probe.figures}; "
        f"Modbus read afterwards {'ok' if read_after else 'FAILED'}"
    )
    closed = len(at_once) + by_idle
    return [
        Row(
            AREA,
            f"{connections} idle Modbus connections",
            connections,
            closed,
            note,
            ok=closed == connections
            and probe.held
            and read_after
            and len(at_once) == connections - max_clients,
        )
    ]


def slowloris(svc: Homemeter, connections: int = 50) -> list[Row]:
    """Half of them send a request head a few bytes a second, half send nothing at all."""
    deadline = HEAD_TIMEOUT + 3
    with probing(svc) as probe:
        socks = [
            socket.create_connection(("127.0.0.1", svc.http_port), timeout=5) for _ in range(connections)
        ]
        slow = socks[: connections // 2]
        for s in slow:
            s.sendall(b"GET /api/v1/system/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        open_ = set(socks)
        while open_ and time.monotonic() - started < deadline:
            for s in [s for s in slow if s in open_]:
                try:
                    s.sendall(b"X-Slow: %d\r\n" % int(time.monotonic()))
                except OSError:
                    open_.discard(s)
            readable, _, _ = select.select(list(open_), [], [], 1.0)
            for s in readable:
                if closed_by_peer(s, 0.1):
                    open_.discard(s)
        waited = time.monotonic() - started
        for s in socks:
            s.close()
    closed = connections - len(open_)
    note = (
        f"{closed} closed by the server within {waited:.1f} s (head timeout {HEAD_TIMEOUT:.0f} s); "
        f"{probe.figures}"
    )
    return [
        Row(
            AREA,
            f"slowloris heads and silent connections ({connections})",
            connections,
            closed,
            note,
            ok=closed == connections and probe.held,
        )
    ]


def slow_bodies(svc: Homemeter, connections: int = 20) -> list[Row]:
    """Authenticated bodies under the size limit, a byte a second: cut off with 408, nobody waits.

    Half declare a length (400 bytes: this endpoint takes 512), half are chunked; the handler is
    waiting for them (Digest passed), the worst case for the server.
    """
    path = "/api/v1/ade7953/channel"
    heads = [
        (
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{_auth_header(svc, 'PUT', path)}"
            "Content-Type: application/json\r\n"
            + ("Content-Length: 400\r\n" if n % 2 == 0 else "Transfer-Encoding: chunked\r\n")
            + "\r\n"
        ).encode()
        for n in range(connections)
    ]
    answers: dict[socket.socket, tuple[int, float]] = {}  # status (0: closed without one), after s
    deadline = BODY_GRACE + 5
    with probing(svc) as probe:
        socks = [socket.create_connection(("127.0.0.1", svc.http_port), timeout=5) for _ in heads]
        chunked = {s for n, s in enumerate(socks) if n % 2}
        started = time.monotonic()
        for s, head in zip(socks, heads, strict=True):
            s.sendall(head)
        while len(answers) < len(socks) and (elapsed := time.monotonic() - started) < deadline:
            readable, _, _ = select.select([s for s in socks if s not in answers], [], [], 1.0)
            for s in readable:
                answers[s] = (_status(s), time.monotonic() - started)
            for s in socks:
                if s not in answers:
                    try:
                        s.sendall(b"1\r\n \r\n" if s in chunked else b" ")
                    except OSError:  # closed: its answer may still be waiting to be read
                        answers[s] = (_status(s), elapsed)
        for s in socks:
            s.close()
    timed_out = sum(status == 408 for status, _ in answers.values())
    other = sorted({status for status, _ in answers.values()} - {408})
    slowest = max((after for _, after in answers.values()), default=0.0)
    note = (
        f"{timed_out} x 408, {len(answers) - timed_out} other (statuses {other}, 0: closed), "
        f"{len(socks) - len(answers)} still open after {deadline:.0f} s; all within {slowest:.1f} s "
        f"(grace {BODY_GRACE:.0f} s, then at least 1 kB/s); {probe.figures}"
    )
    return [
        Row(
            AREA,
            f"bodies trickled a byte a second ({connections}, half chunked)",
            connections,
            timed_out,
            note,
            ok=timed_out == connections and slowest < BODY_GRACE + 3 and probe.held,
        )
    ]


def _status(sock: socket.socket) -> int:
    """The status of the answer waiting on `sock`, 0 if it was closed without one."""
    data = b""
    with contextlib.suppress(OSError):
        data = sock.recv(4096)
    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
    return int(m.group(1)) if m else 0


def _raw(svc: Homemeter, head: bytes, body: bytes = b"", wait: float = 5.0) -> int:
    """Send a request (with a body possibly shorter than declared); the status answered within `wait`."""
    with socket.create_connection(("127.0.0.1", svc.http_port), timeout=wait) as s:
        s.sendall(head + body)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return 0
    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
    return int(m.group(1)) if m else 0


def oversize_bodies(svc: Homemeter) -> list[Row]:
    """Over every kind of limit; chunked and declared-but-unsent bodies must be refused early."""
    json_body = b'{"index": 1, "label": "' + b"x" * 20_000 + b'"}'
    cases: list[tuple[str, int]] = []

    def head(method: str, path: str, extra: str) -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{_auth_header(svc, method, path)}"
            f"Content-Type: application/json\r\n{extra}\r\n"
        ).encode()

    cases.append(
        (
            "JSON body 20 kB (limit 16 kB)",
            _raw(
                svc,
                head("PUT", "/api/v1/ade7953/channel", f"Content-Length: {len(json_body)}\r\n"),
                json_body,
            ),
        )
    )
    # Chunked, one 64 kB chunk sent, 1 GB announced by never ending: refused once over the limit.
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    cases.append(
        (
            "chunked JSON body, endless",
            _raw(svc, head("PUT", "/api/v1/ade7953/channel", "Transfer-Encoding: chunked\r\n"), chunk),
        )
    )
    for path, what in (
        ("/api/v1/restore/filesystem", "archive upload"),
        ("/api/v1/files/big.bin", "file upload"),
        ("/api/v1/restore/configuration", "configuration restore"),
    ):
        cases.append(
            (
                f"{what}, 1 TB declared, not sent",
                _raw(svc, head("POST", path, "Content-Length: 1000000000000\r\n")),
            )
        )
    refused = sum(status == 413 for _, status in cases)
    note = "; ".join(f"{what}: {status or 'no answer'}" for what, status in cases)
    return [Row(AREA, "bodies over the size limits answered 413", len(cases), refused, note)]


def _auth_header(svc: Homemeter, method: str, path: str) -> str:
    """A valid Digest Authorization header line for one request (fresh nonce)."""
    r = svc.request(method, path, auth=None, data=b"")
    challenge = r.headers["www-authenticate"]
    nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    realm = re.search(r'realm="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    opaque = re.search(r'opaque="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    cnonce = os.urandom(8).hex()
    response = md5(
        f"{md5(f'admin:{realm}:{PASSWORD}')}:{nonce}:00000001:{cnonce}:auth:{md5(f'{method}:{path}')}"
    )
    return (
        f'Authorization: Digest username="admin", realm="{realm}", nonce="{nonce}", uri="{path}", '
        f'algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}", response="{response}", '
        f'opaque="{opaque}"\r\n'
    )


def failed_logins(svc: Homemeter, attempts: int = 10_000) -> list[Row]:
    """Wrong passwords from 127.0.0.1 on one keep-alive connection; the real user on 127.0.0.2."""
    path = "/api/v1/system/info"
    conn = http.client.HTTPConnection("127.0.0.1", svc.http_port, timeout=10)
    conn.request("GET", path)
    first = conn.getresponse()
    first.read()
    challenge = first.getheader("www-authenticate", "")
    nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    realm = re.search(r'realm="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    statuses: dict[int, int] = {}
    retry_after = 0
    with probing(svc, source="127.0.0.2") as probe:
        started = time.monotonic()
        for n in range(1, attempts + 1):
            header = (
                f'Digest username="admin", realm="{realm}", nonce="{nonce}", uri="{path}", '
                f'qop=auth, nc={n:08x}, cnonce="c{n}", response="{"0" * 32}"'
            )
            conn.request("GET", path, headers={"Authorization": header})
            response = conn.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status == 429 and (response.getheader("retry-after") or "").isdigit():
                retry_after += 1
        elapsed = time.monotonic() - started
    conn.close()
    refused = statuses.get(401, 0) + retry_after
    note = (
        f"{statuses.get(401, 0)} x 401 then {statuses.get(429, 0)} x 429 ({retry_after} with Retry-After), "
        f"other {sum(v for k, v in statuses.items() if k not in (401, 429))}, in {elapsed:.1f} s"
    )
    with svc.session("127.0.0.2") as user:
        user_after = user.get(svc.url + path, timeout=5).status_code
    return [
        Row(
            AREA,
            f"failed logins from one address ({attempts})",
            attempts,
            refused,
            note,
            ok=refused == attempts and statuses.get(401, 0) <= 5,
        ),
        Row(
            AREA,
            "real user on 127.0.0.2 meanwhile and after",
            probe.tally["tried"] + 1,
            probe.tally["ok"] + (user_after == 200),
            f"{probe.figures}; after: {user_after}",
        ),
    ]


def client_gone_mid_body(svc: Homemeter) -> list[Row]:
    """Clients that hang up halfway through a body: no error in the log, the service answers on."""
    cases = (
        ("PUT", "/api/v1/ade7953/channel", "application/json"),
        ("POST", "/api/v1/restore/configuration", "application/json"),
        ("POST", "/api/v1/files/half.bin", "multipart/form-data; boundary=xyz"),
    )
    for method, path, kind in cases:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{_auth_header(svc, method, path)}"
            f"Content-Type: {kind}\r\nContent-Length: 9000\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", svc.http_port), timeout=5) as s:
            s.sendall(head + b"{" + b" " * 1000)
            time.sleep(0.3)
    answered = svc.get("/api/v1/health").status_code == 200
    errors = [line for line in svc.log.splitlines() if "level=error" in line]
    return [
        Row(
            AREA,
            "clients gone mid-body",
            len(cases),
            len(cases) if answered and not errors else 0,
            f"{len(errors)} error lines in the log; service answering: {answered}",
        )
    ]
