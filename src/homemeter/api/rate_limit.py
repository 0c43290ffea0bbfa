"""Failed-login limiting per client address, so guessing the password over HTTP is slow.

Only failures count (credentials sent but wrong), never the unauthenticated first request of a
Digest handshake, so normal clients are never slowed. State is per address: an attacker blocks
only itself, and memory is capped by evicting the least recently failing addresses first.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class _Entry:
    """Failure history of one address."""

    __slots__ = ("blocked_until", "failures", "last_failure", "strikes")

    def __init__(self) -> None:
        self.failures: list[float] = []  # times of recent failures, at most max_failures kept
        self.blocked_until = -math.inf
        self.strikes = 0  # blocks so far; each one doubles the next
        self.last_failure = -math.inf


class FailureLimiter:
    """Blocks an address for `block` s after `max_failures` failures within `window` s.

    A repeat block within `max_block` s of the previous one lasts twice as long, up to `max_block`.
    """

    max_entries = 10_000  # addresses remembered; ~150 bytes each

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 60.0,
        block: float = 60.0,
        max_block: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.block = block
        self.max_block = max_block
        self.clock = clock  # also the Digest middleware's nonce clock, so tests move both at once
        self._entries: dict[str, _Entry] = {}  # order: least recent failure first

    def retry_after(self, address: str) -> int:
        """Whole seconds until `address` may try again; 0 when it is not blocked."""
        entry = self._entries.get(address)  # hot path: one dict lookup for clean addresses
        if entry is None:
            return 0
        left = entry.blocked_until - self.clock()
        return math.ceil(left) if left > 0 else 0

    def record_failure(self, address: str) -> int:
        """Count one failed login; returns the block length in s if this one started a block."""
        now = self.clock()
        entry = self._entries.pop(address, None) or _Entry()
        self._entries[address] = entry  # re-insert: keeps the dict ordered by last failure
        if now - entry.blocked_until > self.max_block:
            entry.strikes = 0  # quiet long enough: forgive earlier blocks
        entry.last_failure = now
        failures = entry.failures
        failures.append(now)
        while failures and now - failures[0] > self.window:
            del failures[0]
        if len(failures) > self.max_failures:
            del failures[0]
        blocked_for = 0.0
        if len(failures) >= self.max_failures:
            blocked_for = min(self.block * 2**entry.strikes, self.max_block)
            entry.blocked_until = now + blocked_for
            entry.strikes += 1
            failures.clear()
            log.warning(
                "%s blocked for %d s after %d failed logins",
                address,
                blocked_for,
                self.max_failures,
            )
        self._evict(now)
        return math.ceil(blocked_for)

    def record_success(self, address: str) -> None:
        """A correct login clears the failure count (earlier blocks still count for doubling)."""
        if not self._entries:
            return
        entry = self._entries.get(address)
        if entry is None:
            return
        if entry.strikes == 0:
            del self._entries[address]
        else:
            entry.failures.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        """Drop forgotten addresses from the front; past the cap drop the oldest even if blocked."""
        entries = self._entries
        while entries:
            address, entry = next(iter(entries.items()))
            idle = now - entry.last_failure > self.window and now - entry.blocked_until > self.max_block
            if not idle and len(entries) <= self.max_entries:
                return
            del entries[address]
