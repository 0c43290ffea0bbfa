"""uvicorn's httptools protocol with a deadline for each request head (slowloris).

uvicorn times out only an idle keep-alive connection after a response; a connection that never
sends a byte, or sends its head a byte at a time, stays open for ever and holds a file descriptor:
a few hundred of those starve the service (slowloris). Here the head (request line and headers)
must be complete within `HEAD_TIMEOUT` s of the connection or of the request's first byte, else the
connection is closed. Bodies are not timed: their size is capped by each endpoint.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

#: s for a whole request head; a client on a LAN needs milliseconds, a phone on weak Wi-Fi seconds.
HEAD_TIMEOUT = 10.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Closes a connection whose request head is not complete `HEAD_TIMEOUT` s after it began."""

    _head_timer: asyncio.TimerHandle | None = None

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

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.debug("request head not complete within %.0f s, closing", HEAD_TIMEOUT)
            self.transport.close()
