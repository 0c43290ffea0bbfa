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
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

#: s for a whole request head; a client on a LAN needs milliseconds, a phone on weak Wi-Fi seconds.
HEAD_TIMEOUT = 10.0
#: s a body may take before its average rate counts; then at least `BODY_MIN_RATE` bytes/s.
BODY_GRACE = 10.0
#: bytes/s: far below any working link (weak Wi-Fi moves tens of kB/s), far above a trickle.
BODY_MIN_RATE = 1000.0

_TOO_SLOW = b"request body sent too slowly"
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_SLOW), _TOO_SLOW)
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Closes a connection whose request head is late; answers 408 to a body that trickles."""

    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _body_started = 0.0  # loop time the current body began (its head was complete)
    _body_received = 0  # bytes of the current body so far

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that sends nothing at all

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # the next request on a kept-alive connection
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()
        self._cancel_body_timer()
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # a WebSocket: another protocol takes the connection over
        # A request without a body completes in this same parser call and cancels this timer.
        self._body_started, self._body_received = self.loop.time(), 0
        self._body_timer = self.loop.call_later(BODY_GRACE, self._check_body)

    def on_body(self, body: bytes) -> None:
        self._body_received += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.debug("request head not complete within %.0f s, closing", HEAD_TIMEOUT)
            self.transport.close()

    def _check_body(self) -> None:
        """Due: is the body still on pace? If not, 408 (or close); else look again when it may not be."""
        self._body_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # we hold the reading back: wait for the handler, not the client
            self._body_started += BODY_GRACE
            self._body_timer = self.loop.call_later(BODY_GRACE, self._check_body)
            return
        allowed = self._body_started + BODY_GRACE + self._body_received / BODY_MIN_RATE
        if now < allowed:
            self._body_timer = self.loop.call_later(allowed - now, self._check_body)
            return
        log.debug(
            "request body too slow: %d bytes in %.0f s, 408", self._body_received, now - self._body_started
        )
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(_TIMED_OUT)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the handler's receive() says http.disconnect; its answer is dropped
            cycle.message_event.set()
        self.transport.close()
