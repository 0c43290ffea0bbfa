"""uvicorn's httptools protocol with deadlines for request heads and bodies (slowloris).

uvicorn times out only an idle keep-alive connection after a response; a connection that never
sends a byte, or sends its head a byte at a time, stays open for ever and holds a file descriptor:
a few hundred of those starve the service (slowloris). Here the head (request line and headers)
must be complete within `HEAD_TIMEOUT` s of the connection or of the request's first byte, else the
connection is closed.

A body is capped in size by each endpoint, and in time here: after `BODY_GRACE` s it must have
arrived at `BODY_MIN_RATE` bytes per second on average, else the request is answered 408 (or, if
its answer has begun, the connection is closed). So a body trickled a byte a second is cut off after
`BODY_GRACE` s, and the longest a body may take is `BODY_GRACE` + its size limit / `BODY_MIN_RATE`
(26 s for the 16 kB JSON limit). While the service itself holds the reading back (the handler has
not taken what came, or an earlier pipelined request is in flight), the client is not to blame:
the clock waits.

One sweep per server, every `SWEEP_INTERVAL` s while it has connections, enforces both; a request
only stores and clears start times. A timer armed and cancelled per request cost 3 % of the
server's CPU on the meter-values poll (py-spy, bench/http.py at 32 connections).
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

#: s for a whole request head; a client on a LAN needs milliseconds, a phone on weak Wi-Fi seconds.
HEAD_TIMEOUT = 10.0
#: s a body may take before its average rate counts; then at least `BODY_MIN_RATE` bytes/s.
BODY_GRACE = 10.0
#: bytes/s: far below any working link (weak Wi-Fi moves tens of kB/s), far above a trickle.
BODY_MIN_RATE = 1000.0
#: s between sweeps: a deadline is enforced up to this much late.
SWEEP_INTERVAL = 1.0

_TOO_SLOW = b"request body sent too slowly"
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_SLOW), _TOO_SLOW)
)

# The running sweep of each server (uvicorn's ServerState holds its open connections).
_sweeps: weakref.WeakKeyDictionary[ServerState, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Closes a connection whose request head is late; answers 408 to a body that trickles."""

    head_since: float | None = None  # loop time the unfinished request head began, if any
    body_since: float | None = None  # loop time the unfinished body began (its head was complete)
    body_received = 0  # bytes of the current body so far

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_since = self.loop.time()  # a connection that sends nothing at all
        state = self.server_state
        if state not in _sweeps:
            _sweeps[state] = self.loop.call_later(SWEEP_INTERVAL, _sweep, self.loop, state)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.head_since is None:  # the next request on a kept-alive connection
            self.head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self.head_since = None
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # a WebSocket: another protocol takes the connection over
        # A request without a body completes in this same parser call and clears it again.
        self.body_since, self.body_received = self.loop.time(), 0

    def on_body(self, body: bytes) -> None:
        self.body_received += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.body_since = None
        super().on_message_complete()

    def check_deadlines(self, now: float) -> None:
        """The sweep's visit: close a late head, answer 408 to a body behind its pace."""
        if self.transport.is_closing():
            return
        if self.head_since is not None and now - self.head_since > HEAD_TIMEOUT:
            log.debug("request head not complete within %.0f s, closing", HEAD_TIMEOUT)
            self.transport.close()
            return
        if self.body_since is None:
            return
        if self.flow.read_paused:  # we hold the reading back: wait for the handler, not the client
            self.body_since += SWEEP_INTERVAL
            return
        if now < self.body_since + BODY_GRACE + self.body_received / BODY_MIN_RATE:
            return
        log.debug("request body too slow: %d bytes in %.0f s, 408", self.body_received, now - self.body_since)
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(_TIMED_OUT)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the handler's receive() says http.disconnect; its answer is dropped
            cycle.message_event.set()
        self.transport.close()


def _sweep(loop: asyncio.AbstractEventLoop, state: ServerState) -> None:
    now = loop.time()
    for conn in list(state.connections):  # closing one ends it later, not during this loop
        if isinstance(conn, GuardedHttpToolsProtocol):
            conn.check_deadlines(now)
    if state.connections:
        _sweeps[state] = loop.call_later(SWEEP_INTERVAL, _sweep, loop, state)
    else:
        del _sweeps[state]
