"""A restart of the service process: a clean stop (energy saved), then the same command line again.

`serve()` owns the stop event and returns the pending reason; `app.run()` re-execs after the event
loop is closed, so nothing of the old process (sockets, threads) survives into the new one.
"""

from __future__ import annotations

import asyncio


class Restart:
    """Asked for by `POST /system/restart` and the endpoints that must restart to take effect."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self.reason: str | None = None

    @property
    def pending(self) -> bool:
        return self.reason is not None

    def request(self, reason: str = "restart") -> bool:
        """Mark a restart as pending; False if one already is (the device then answers 423)."""
        if self.reason is not None:
            return False
        self.reason = reason
        return True

    def proceed(self) -> None:
        """Stop now. Handlers call it from a background task, after their answer was sent: the
        device replies before it restarts, and the stop cancels the HTTP server."""
        self._stop.set()

    async def stopping(self) -> None:
        """Returns once the service begins to stop: long-lived responses (event streams) end then,
        instead of holding the HTTP server's graceful stop for its whole grace period."""
        await self._stop.wait()
