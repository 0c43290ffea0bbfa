"""uvicorn's httptools protocol with a deadline for each request head (slowloris).

uvicorn times out only an idle keep-alive connection after a response; a connection that never
sends a byte, or sends its head a byte at a time, stays open for ever and holds a file descriptor:
a few hundred of those starve the service (slowloris). Here the head (request line and headers)
must be complete within `HEAD_TIMEOUT` s of the connection or of the request's first byte, else the
connection is closed. Bodies are not timed: their size is capped by each endpoint.

One sweep per server, every `SWEEP_INTERVAL` s while it has connections, closes the overdue ones;
a request only stores and clears a start time. A timer armed and cancelled per request cost 3 % of
the server's CPU on the meter-values poll (py-spy, bench/http.py at 32 connections).
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
#: s between sweeps: a head is cut between HEAD_TIMEOUT and HEAD_TIMEOUT + SWEEP_INTERVAL.
SWEEP_INTERVAL = 1.0

# The running sweep of each server (uvicorn's ServerState holds its open connections).
_sweeps: weakref.WeakKeyDictionary[ServerState, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Closes a connection whose request head is not complete `HEAD_TIMEOUT` s after it began."""

    head_since: float | None = None  # loop time the unfinished request head began, if any

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


def _sweep(loop: asyncio.AbstractEventLoop, state: ServerState) -> None:
    now = loop.time()
    for conn in list(state.connections):  # closing one ends it later, not during this loop
        since = getattr(conn, "head_since", None)
        if since is not None and now - since > HEAD_TIMEOUT and not conn.transport.is_closing():
            log.debug("request head not complete within %.0f s, closing", HEAD_TIMEOUT)
            conn.transport.close()
    if state.connections:
        _sweeps[state] = loop.call_later(SWEEP_INTERVAL, _sweep, loop, state)
    else:
        del _sweeps[state]
