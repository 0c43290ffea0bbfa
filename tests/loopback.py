"""What every test level shares: the test password, free loopback ports and polling."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PASSWORD = "correct horse battery"

# Test ports come from 20000-32767: below Linux's ephemeral range (32768-60999), so the OS never gives
# one of them to a client socket, and above the usual services. The range is cut into blocks; each
# process (every pytest-xdist worker, a serial run, a soak script) holds one block for its lifetime
# through an exclusive lock file, so two processes never hand out the same port, even two test runs
# from different work trees. Within its block a process hands ports out in turn, never the same one
# twice before the block wraps, and only one it could bind right now (a server still on it is skipped).
PORT_RANGE = range(20000, 32768)
BLOCK_SIZE = 500
LOCK_DIR = Path(tempfile.gettempdir()) / f"homemeter-test-ports-{os.getuid()}"


class _PortBlock:
    """The block this process holds, and where its turn is."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pid = 0  # a forked child claims a block of its own
        self._lock_file: int | None = None
        self._ports: range = range(0)
        self._next = 0

    def _claim(self) -> None:
        blocks = len(PORT_RANGE) // BLOCK_SIZE
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw3" in the fourth worker
        preferred = int(worker[2:]) if worker[2:].isdigit() else 0
        LOCK_DIR.mkdir(exist_ok=True)
        for i in range(blocks):
            index = (preferred + i) % blocks
            fd = os.open(LOCK_DIR / f"block-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if self._lock_file is not None:
                os.close(self._lock_file)  # the parent's, inherited over fork: the parent keeps its lock
            start = PORT_RANGE.start + index * BLOCK_SIZE
            self._lock_file, self._pid = fd, os.getpid()
            self._ports = range(start, start + BLOCK_SIZE)
            self._next = random.randrange(BLOCK_SIZE)  # a new run does not retry the last run's ports first
            return
        raise AssertionError(
            f"all {blocks} test port blocks are held by other processes (locks in {LOCK_DIR})"
        )

    def take(self) -> int:
        with self._guard:
            if self._pid != os.getpid():
                self._claim()
            for _ in range(BLOCK_SIZE):
                port = self._ports[self._next]
                self._next = (self._next + 1) % BLOCK_SIZE
                if _bindable(port):
                    return port
        raise AssertionError(f"no port of {self._ports} can be bound on 127.0.0.1")


def _bindable(port: int) -> bool:
    """Nothing holds `port` on 127.0.0.1, for TCP nor UDP (no SO_REUSEADDR: a TIME_WAIT counts too)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


_BLOCK = _PortBlock()


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and that no other test process will be given.

    Safe with pytest-xdist: each worker hands out ports from its own block (see PORT_RANGE).
    """
    return _BLOCK.take()


def wait_until(
    condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `condition` until it returns something truthy (returned); fail after `timeout` seconds.

    Every test that waits for the service waits this way: never a fixed sleep before an assert.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(interval)
