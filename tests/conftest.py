"""What the whole suite needs to run on several pytest-xdist workers (`make test` runs it so).

- `@pytest.mark.serial`: a test that measures timing, CPU or memory runs alone. Every other test holds
  a shared lock while it runs; a serial test takes it exclusively, so it starts once the tests in
  flight have finished, and no other test starts until it is done. Without xdist this costs nothing.
- A test that uses a module- or class-scoped fixture is grouped with its module (`xdist_group`), so
  the expensive fixture (a service with history, a browser) starts once, on one worker.
- Network namespaces left by a worker that was killed (tests/e2e/netns.py names them after the pid)
  are deleted when a run starts.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.netns import delete_stale_namespaces

SERIAL = "serial"
RUN_LOCKS = "HOMEMETER_TEST_RUN_LOCKS"  # the controller's lock directory, inherited by its workers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SERIAL}: runs alone, no other test at the same time (it measures timing, CPU or memory)",
    )
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        # Before the workers start (pytest_sessionstart), so they inherit it.
        os.environ[RUN_LOCKS] = tempfile.mkdtemp(prefix="homemeter-test-run-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and RUN_LOCKS in os.environ:
        shutil.rmtree(os.environ.pop(RUN_LOCKS), ignore_errors=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # once per run: the controller (or a serial run)
        delete_stale_namespaces()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests of a module that share a module- or class-scoped fixture onto one worker."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for name in info.names_closure:
            definitions = info.name2fixturedefs.get(name, ())
            if definitions and definitions[-1].scope in ("module", "class", "package"):
                item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
                break


class _RunLock:
    """A readers-writer lock over the workers of one run: two lock files (flock).

    A serial test takes the gate, then the run lock exclusively; any other test passes the gate
    (shared) and takes the run lock shared. Holding the gate keeps new tests from starting while a
    serial test waits for the ones in flight, so it cannot be starved.
    """

    def __init__(self, directory: Path) -> None:
        self._gate = os.open(directory / "gate", os.O_RDWR | os.O_CREAT, 0o600)
        self._run = os.open(directory / "run", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def hold(self, alone: bool) -> Iterator[None]:
        if alone:
            fcntl.flock(self._gate, fcntl.LOCK_EX)
            fcntl.flock(self._run, fcntl.LOCK_EX)
        else:
            fcntl.flock(self._gate, fcntl.LOCK_SH)
            fcntl.flock(self._run, fcntl.LOCK_SH)
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._run, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(self._gate, fcntl.LOCK_UN)


_LOCK: list[_RunLock] = []


def _run_lock() -> _RunLock | None:
    """The run's lock in an xdist worker; None in a serial run, where nothing runs beside a test."""
    directory = os.environ.get(RUN_LOCKS)
    if directory is None or "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    if not _LOCK:
        _LOCK.append(_RunLock(Path(directory)))
    return _LOCK[0]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Outermost, so outside pytest-timeout's timer: waiting for a serial test is not the test's time."""
    lock = _run_lock()
    if lock is None:
        yield
        return
    with lock.hold(alone=item.get_closest_marker(SERIAL) is not None):
        yield
