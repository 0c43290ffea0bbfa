"""The seam every consumer plugs into: one lifecycle, one status shape, one configuration path.

A component is everything that runs beside the meter (energy persister, Modbus, MQTT, InfluxDB, mDNS,
history archive). It is an async context manager (enter = start, exit = stop), applies configuration
changes live with `apply(old, new)` or refuses them with `ConfigRejected` (the API answers 409 and the
old configuration stays), reports one `ComponentStatus`, and declares the issue codes it may raise.
`app.COMPONENTS` lists them in start order; they stop in reverse order, so the persister, listed
first, saves the energy totals last.

Adding a consumer is one module with a `Component` subclass and one line in `app.COMPONENTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar

from homemeter.config.app import AppConfig
from homemeter.config.settings import Settings
from homemeter.meter.snapshot import EnergyTotals
from homemeter.meter.source import CounterBaseline, SampleSource
from homemeter.meter.view import MeterView
from homemeter.system.issues import IssueRegistry, Severity

log = logging.getLogger(__name__)

T = TypeVar("T")


class State(StrEnum):
    """Where a component is in its life; `details` and `last_error` say more."""

    STOPPED = "stopped"  # not started, or stopped
    DISABLED = "disabled"  # running but switched off in the configuration
    STARTING = "starting"  # started, not yet working (e.g. first connection attempt)
    RUNNING = "running"  # doing its job
    DEGRADED = "degraded"  # running but failing (broker unreachable, server down): retrying


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One shape for every component's status: REST status endpoints and statistics read it."""

    state: State
    since: float  # epoch seconds of the last state change
    last_error: str | None = None
    counters: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "since": self.since,
            "lastError": self.last_error,
            "counters": dict(self.counters),
            "details": dict(self.details),
        }


class Database(Protocol):
    """The one owner of the energy database: every access goes through its single writer thread."""

    recovered_from: str | None  # set when the start replaced a damaged file by the good copy

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` on the writer thread, serialised with every other access."""
        ...

    async def save_totals(
        self, totals: Mapping[int, EnergyTotals], baselines: Sequence[CounterBaseline] | None = None
    ) -> None:
        """Commit every channel's totals (and the remote counters they include) in one transaction."""
        ...


class ConfigChanger(Protocol):
    """Changes the configuration as an API request does: validated whole, applied everywhere, saved."""

    @property
    def current(self) -> AppConfig: ...

    async def update(self, **changes: object) -> AppConfig: ...


@dataclass(frozen=True)
class Context:
    """What a component may use; built once by `app.py`."""

    settings: Settings  # command-line options (bind address, ports, data directory)
    config: AppConfig  # the configuration at start; later changes arrive through `apply`
    meter: MeterView
    issues: IssueRegistry
    device_id: str
    database: Database
    http_port: int  # the bound HTTP port
    #: Every component by name, filled when they are built: one may read another's status (mDNS
    #: advertises the port Modbus actually bound). Changes reach components in list order.
    components: dict[str, Component] = field(default_factory=dict)
    source: SampleSource | None = None  # what the meter samples (hardware health, raw registers)
    #: For a component that changes the configuration itself (channel names from a remote meter);
    #: never from inside `apply` (changes are serialised: it would wait for itself).
    config_service: ConfigChanger | None = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir


class Component:
    """Base of every component: named tasks kept and cancelled at stop, status, counters.

    Subclasses override `start`, `stop` (call super), `apply` and set `name` and `issue_codes`.
    """

    name: ClassVar[str]
    issue_codes: ClassVar[Mapping[str, Severity]] = MappingProxyType({})

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # The loop keeps only weak references to tasks: these strong ones keep them alive.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._state = State.STOPPED
        self._since = time.time()
        self._last_error: str | None = None
        self.counters: dict[str, int] = {}

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Begin work; raise a `HomemeterError` to stop the service start with its message."""

    async def stop(self) -> None:
        """Cancel every task this component spawned and wait for them."""
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.set_state(State.STOPPED)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A named task owned by this component: cancelled at stop, its crash logged, never silent."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            err = task.exception()
            log.error("component task failed component=%s task=%s error=%r", self.name, task.get_name(), err)
            self.set_state(State.DEGRADED, f"internal error: {err!r}")

    # ----------------------------------------------------------------- configuration
    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        """Apply a configuration change live, or raise `ConfigRejected` (nothing changed)."""

    # ----------------------------------------------------------------- status
    def set_state(self, state: State, error: str | None = None) -> None:
        """Change state; `error` is kept as the last error until a later one replaces it."""
        if state is not self._state:
            self._state, self._since = state, time.time()
        if error is not None:
            self._last_error = error

    def count(self, counter: str, n: int = 1) -> None:
        self.counters[counter] = self.counters.get(counter, 0) + n

    def details(self) -> Mapping[str, Any]:
        """Component-specific facts for the status (addresses, backlog); override to add some."""
        return {}

    def status(self) -> ComponentStatus:
        return ComponentStatus(
            self._state,
            self._since,
            self._last_error,
            MappingProxyType(dict(self.counters)),
            MappingProxyType(dict(self.details())),
        )

    # ----------------------------------------------------------------- issues
    def raise_issue(self, code: str, message: str) -> None:
        self.ctx.issues.raise_issue(code, message)

    def clear_issue(self, code: str) -> None:
        self.ctx.issues.clear(code)


#: A component class: built from the `Context`, its `issue_codes` declared before any starts.
ComponentFactory = type[Component]


class Components:
    """The running components, entered in list order and left in reverse."""

    def __init__(self, factories: Sequence[ComponentFactory], ctx: Context) -> None:
        for factory in factories:
            ctx.issues.declare(factory.issue_codes)
        self._items = [factory(ctx) for factory in factories]
        ctx.components.update((c.name, c) for c in self._items)
        self._stack = contextlib.AsyncExitStack()

    def __iter__(self) -> Iterator[Component]:
        return iter(self._items)

    def get(self, name: str) -> Component | None:
        return next((c for c in self._items if c.name == name), None)

    def statuses(self) -> dict[str, ComponentStatus]:
        return {c.name: c.status() for c in self._items}

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            for component in self._items:
                await stack.enter_async_context(component)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()
