"""What the whole suite needs to run on several pytest-xdist workers (`make test` runs it so).

- Scheduling (`_GroupScheduling`): tests are handed out one at a time, except groups that go to one
  worker whole: the tests of a module that use a module- or class-scoped fixture (so a service with
  history or a browser starts once), an explicit `xdist_group`, and the serial tests.
- `@pytest.mark.serial`: a test that measures timing, CPU or memory runs alone. Every other test holds
  a shared lock while it runs; a serial test takes it exclusively, so it starts once the tests in
  flight have finished, and no other test starts until it is done. Serial tests are scheduled last.
  Without xdist none of this costs anything.
- Network namespaces left by a worker that was killed (tests/e2e/netns.py names them after the pid)
  are deleted when a run starts.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from homemeter.logs.ring import ConsoleHandler, RingHandler
from tests.e2e.netns import delete_stale_namespaces

SERIAL = "serial"
RUN_DIR = "HOMEMETER_TEST_RUN_DIR"  # made by the controller for one run, inherited by its workers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SERIAL}: runs alone, no other test at the same time (it measures timing, CPU or memory)",
    )
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        # Before the workers start (pytest_sessionstart), so they inherit it.
        os.environ[RUN_DIR] = tempfile.mkdtemp(prefix="homemeter-test-run-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and RUN_DIR in os.environ:
        shutil.rmtree(os.environ.pop(RUN_DIR), ignore_errors=True)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """`homemeter.cli.main` run in a test sets up logging for a process: a console handler on that
    test's captured stderr, closed afterwards, and the root level. Undo it, so the next test on the
    worker neither writes to a closed stream nor sees another level (tests run in any order)."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and isinstance(handler, (ConsoleHandler, RingHandler)):
            root.removeHandler(handler)
    root.setLevel(level)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # once per run: the controller (or a serial run)
        delete_stale_namespaces()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker: tell the controller's scheduler which tests must share a worker (`groups.json`)."""
    run_dir = os.environ.get(RUN_DIR)
    if run_dir is None or not hasattr(config, "workerinput"):
        return
    groups = {item.nodeid: group for item in items if (group := _group(item))}
    # Every worker collects the same tests and writes the same file: whole files, replaced atomically.
    tmp = Path(run_dir) / f"groups.{os.getpid()}.json"
    tmp.write_text(json.dumps(groups))
    tmp.replace(Path(run_dir) / "groups.json")


def _group(item: pytest.Item) -> str | None:
    """The tests that must share a worker: the serial ones (run last, one after another), an explicit
    `xdist_group`, or a module whose tests use a module- or class-scoped fixture (set up once)."""
    if item.get_closest_marker(SERIAL) is not None:
        return SERIAL
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    info = getattr(item, "_fixtureinfo", None)
    for name in info.names_closure if info is not None else ():
        definitions = info.name2fixturedefs.get(name, ())
        if definitions and definitions[-1].scope in ("module", "class", "package"):
            return item.nodeid.split("::", 1)[0]
    return None


class _GroupScheduling(LoadScopeScheduling):
    """Load scheduling, one test at a time, except that a group goes to one worker as a whole.

    pytest-xdist's own `loadgroup` marks groups by rewriting node ids, which pytest 9.2 ignores
    (pytest-xdist issue 1386); the groups come from the workers' `groups.json` instead. Order: groups,
    largest first (their fixtures are the slow ones); single tests in collection order; the serial
    tests last, when the other workers are running out of work, so they wait for few.
    """

    _groups: dict[str, str]

    def schedule(self) -> None:
        """LoadScopeScheduling.schedule with our units and order."""
        assert self.collection_is_completed
        if self.collection is not None:
            for node in self.nodes:
                self._reschedule(node)
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = list(next(iter(self.registered_collections.values())))
        if not self.collection:
            return
        path = Path(os.environ[RUN_DIR]) / "groups.json"
        self._groups = json.loads(path.read_text()) if path.exists() else {}
        units: dict[str, dict[str, bool]] = {}
        for nodeid in self.collection:
            units.setdefault(self._split_scope(nodeid), {})[nodeid] = False
        for scope, nodeids in sorted(units.items(), key=lambda unit: (unit[0] == SERIAL, -len(unit[1]))):
            self.workqueue[scope] = nodeids
        for _ in range(len(self.nodes) - len(self.workqueue)):  # more workers than work
            unused, _assigned = self.assigned_work.popitem()
            unused.shutdown()
        for node in self.nodes:
            self._assign_work_unit(node)
        for node in self.nodes:
            self._reschedule(node)
        if not self.workqueue:
            for node in self.nodes:
                node.shutdown()

    def _split_scope(self, nodeid: str) -> str:
        return self._groups.get(nodeid, nodeid)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: `-p no:xdist` runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    if config.getvalue("dist") in ("load", "loadgroup") and RUN_DIR in os.environ:
        return _GroupScheduling(config, log)
    return None


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
    directory = os.environ.get(RUN_DIR)
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
