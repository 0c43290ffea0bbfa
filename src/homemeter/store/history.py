"""The history archive component: every channel's counters at every UTC hour boundary, in `energy.db`.

It follows the meter's snapshots (latest-only) and writes a row per channel when an hour closes, on
the meter clock (`snapshot.taken_at`, which runs faster than real time under `--speed`). The value at
a boundary is interpolated between the two snapshots around it. A clean stop writes the open hour as
a provisional row with the final totals (the ones the energy persister saves last); after a crash the
hours missed while down are filled at the next start with the last saved totals, flagged MISSED, never
invented. A channel whose counters go down (reset), jump up (set) or whose role or group changes gets
an event row, so per-period sums stay correct across it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.errors import StoreError
from homemeter.meter.quantities import ENERGY_ATTRS
from homemeter.meter.reading import POWER_LIMIT
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot
from homemeter.store import archive
from homemeter.store.archive import HOUR, Event, HourRow, RowStatus
from homemeter.store.device_history import DeviceHistory
from homemeter.store.energy_files import EnergyFiles
from homemeter.store.history_import import HistoryImport, Window, attribution, import_history
from homemeter.store.history_query import Buckets, EnergyResult, GroupBy, LiveChannel, LiveState, energy
from homemeter.system.issues import Severity

log = logging.getLogger(__name__)

DAY = 86_400
# A counter that grows faster than the device's power limit on every quantity could explain was set
# through the API (a restore), not measured: recorded as an event so it is not counted as consumption.
_SET_MARGIN = 1.0  # Wh of slack on top of the physical limit


def counters(c: ChannelReading) -> tuple[float, ...]:
    """The five cumulative counters of a channel, in the archive's column order."""
    return tuple(getattr(c, a) for a in ENERGY_ATTRS)


def hour_rows(snap: MeterSnapshot, hour: int, status: RowStatus) -> list[HourRow]:
    """One row per channel at `hour` with the snapshot's counters."""
    return [(hour, c.index, *counters(c), int(c.active), int(status)) for c in snap.channels]


def detect_events(prev: MeterSnapshot, snap: MeterSnapshot) -> list[Event]:
    """What changed between two snapshots that is not energy flowing."""
    events = []
    limit = POWER_LIMIT * max(snap.taken_at - prev.taken_at, 0.0) / HOUR + _SET_MARGIN
    for old, new in zip(prev.channels, snap.channels, strict=False):
        before, after = counters(old), counters(new)
        if old.role is not new.role:
            kind = "role"
        elif any(a < b for a, b in zip(after, before, strict=True)):
            kind = "reset"
        elif any(a - b > limit for a, b in zip(after, before, strict=True)):
            kind = "set"
        elif old.group_label != new.group_label:
            kind = "group"
        else:
            continue
        roles, groups = (old.role.value, new.role.value), (old.group_label, new.group_label)
        events.append(Event(snap.taken_at, new.index, kind, *roles, *groups, before, after))
    return events


def boundary_rows(
    prev: MeterSnapshot, snap: MeterSnapshot, hours: Sequence[int], jumped: set[int]
) -> list[HourRow]:
    """Rows at `hours` (prev.taken_at < h <= snap.taken_at), interpolated between the two snapshots.

    A channel with an event between them keeps its earlier counters: the event is placed at
    `snap.taken_at`, after these boundaries.
    """
    span = snap.taken_at - prev.taken_at
    rows: list[HourRow] = []
    for h in hours:
        f = (h - prev.taken_at) / span if span > 0 else 1.0
        for old, new in zip(prev.channels, snap.channels, strict=False):
            a = counters(old)
            if new.index not in jumped:
                a = tuple(x + (y - x) * f for x, y in zip(a, counters(new), strict=True))
            rows.append((h, new.index, *a, int(new.active), int(RowStatus.MEASURED)))
    return rows


def recover(conn: Any, snap: MeterSnapshot, oldest: int) -> tuple[int, int | None]:
    """At start: schema, hours missed while down, offline changes. (next boundary, newest row)."""
    archive.ensure_schema(conn)
    now = snap.taken_at
    archive.drop_future_provisional(conn, now)
    current = int(now // HOUR) * HOUR
    last = archive.last_hour(conn)
    rows: list[HourRow] = []
    events: list[Event] = []
    at = snap.taken_at
    if last is None or last < current:
        first = current if last is None else max(last + HOUR, oldest)
        for h in range(first, current + 1, HOUR):
            rows.extend(hour_rows(snap, h, RowStatus.MISSED))
        at = min(at, first - 1.0)  # the missed rows carry the changed counters: the change precedes them
    if last is not None:
        events = _offline_changes(conn, snap, min(last, current), at)
    archive.write(conn, rows, events, [(c.index, c.role.value, c.group_label) for c in snap.channels])
    newest = archive.last_hour(conn)
    return max(current, newest or current) + HOUR, newest


def _offline_changes(conn: Any, snap: MeterSnapshot, last: int, at: float) -> list[Event]:
    """Counters lower than the last archived ones, or another role/group: changed while down."""
    saved = archive.rows_at(conn, last)
    states = archive.channel_states(conn)
    events = []
    for c in snap.channels:
        before = saved.get(c.index)
        role, group = states.get(c.index, (c.role.value, c.group_label))
        after = counters(c)
        lower = before is not None and any(a < b - 1e-9 for a, b in zip(after, before, strict=True))
        if lower or role != c.role.value or group != c.group_label:
            kind = "role" if role != c.role.value else "reset" if lower else "group"
            roles, groups = (role, c.role.value), (group, c.group_label)
            events.append(Event(at, c.index, kind, *roles, *groups, before or after, after))
    return events


def retention_start(now: float, years: int) -> int:
    """The first hour kept: the same UTC date `years` years ago (29 February becomes 28)."""
    today = datetime.fromtimestamp(now, UTC)
    try:
        then = today.replace(year=today.year - years)
    except ValueError:
        then = today.replace(year=today.year - years, day=28)
    return int(then.timestamp() // HOUR) * HOUR


class HistoryArchive(Component):
    name = "history"
    issue_codes = MappingProxyType(
        {
            "history_write_failing": Severity.ERROR,  # closed hours wait in memory until a write works
            "history_clock_behind": Severity.WARNING,  # the meter clock is earlier than archived hours
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.retention_years = ctx.config.history.retentionYears
        self._seen: MeterSnapshot | None = None  # the last snapshot taken into account
        self._next_boundary = 0  # the first hour boundary not archived yet
        self._rows: list[HourRow] = []  # computed, not yet committed
        self._events: list[Event] = []
        self._write_lock = asyncio.Lock()
        self._last_prune_day = -1
        self._last_write: float | None = None
        self.files = EnergyFiles(ctx.database, lambda: self.ctx.meter.latest.taken_at)

    async def start(self) -> None:
        # Recovery may fill a long downtime (a year: 150,000 rows): in the background, so HTTP and
        # the meter start at once. Snapshots published meanwhile are taken when it is done.
        await self.ctx.database.call(archive.ensure_schema)  # queries may come before the recovery ends
        self.set_state(State.STARTING)
        self.spawn(self._run(), "archive")

    async def _run(self) -> None:
        snap = self.ctx.meter.latest
        oldest = retention_start(snap.taken_at, self.retention_years)
        self._next_boundary, newest = await self.ctx.database.call(recover, snap, oldest)
        if newest is not None and newest > snap.taken_at + HOUR:
            when = datetime.fromtimestamp(newest, UTC).isoformat()
            log.warning("meter clock is behind the energy history newest=%s", when)
            self.raise_issue(
                "history_clock_behind",
                f"The meter clock is earlier than the newest archived hour ({when}); hours are archived "
                "again once it passes it (the energy of the meantime goes into that hour)",
            )
        await self._prune(snap.taken_at)
        self._seen = snap
        self.set_state(State.RUNNING)
        self.spawn(self.files.warm(), "files")
        await self._follow()

    async def stop(self) -> None:
        await super().stop()
        if self._seen is None:  # stopped before the recovery finished: the next start does it again
            return
        snap = self.ctx.meter.latest  # the final snapshot: the meter published it before we stop
        self._take(snap)
        if snap.taken_at < self._next_boundary:
            self._rows.extend(hour_rows(snap, self._next_boundary, RowStatus.PROVISIONAL))
        await self._flush()

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        if new.history.retentionYears != self.retention_years:
            self.retention_years = new.history.retentionYears
            self._last_prune_day = -1
            await self._prune(self.ctx.meter.latest.taken_at)

    async def _follow(self) -> None:
        async for snap in self.ctx.meter.snapshots():
            self._take(snap)
            await self._flush()
            await self._prune(snap.taken_at)

    def _take(self, snap: MeterSnapshot) -> None:
        """Compute the boundary rows and events `snap` brings; `_flush` commits them."""
        prev = self._seen
        if prev is None or snap.seq <= prev.seq or snap.taken_at < prev.taken_at:
            return
        events = detect_events(prev, snap)
        first = max(self._next_boundary, math.floor(prev.taken_at / HOUR) * HOUR + HOUR)
        hours = list(range(first, math.floor(snap.taken_at / HOUR) * HOUR + 1, HOUR))
        if hours:
            self._rows.extend(boundary_rows(prev, snap, hours, {e.channel for e in events}))
            self._next_boundary = hours[-1] + HOUR
        self._events.extend(events)
        self._seen = snap

    async def _flush(self) -> None:
        """Commit what `_take` computed; on failure it stays in memory and the next flush retries."""
        async with self._write_lock:
            rows, events = list(self._rows), list(self._events)
            if not rows and not events:
                return
            try:
                await self.ctx.database.call(archive.write, rows, events)
            except StoreError as err:
                self.count("writeErrors")
                # ERROR once per outage, DEBUG for the retries (one follows every snapshot).
                report = log.debug if self._state is State.DEGRADED else log.error
                report("energy history write failed, will retry error=%s", err)
                self.set_state(State.DEGRADED, str(err))
                self.raise_issue("history_write_failing", f"Energy history cannot be written: {err}")
                return
            # Cleared only after the commit: a stop that cancels the wait writes them again (idempotent).
            del self._rows[: len(rows)]
            del self._events[: len(events)]
            self.count("hoursWritten", len({r[0] for r in rows}))
            # A UTC day closed: its file piece and the device's files now (not at a stop: the next
            # start makes them, no task is left behind).
            if any(r[0] % DAY == 0 for r in rows) and self._state is not State.STOPPED:
                self.spawn(self.files.warm(), "files")
            self.count("events", len(events))
            self._last_write = time.time()
            if self._state is State.DEGRADED:
                self.set_state(State.RUNNING)
            self.clear_issue("history_write_failing")

    async def _prune(self, now: float) -> None:
        """Once per UTC day: drop hours older than the retention."""
        day = int(now // DAY)
        if day == self._last_prune_day:
            return
        self._last_prune_day = day
        try:
            removed = await self.ctx.database.call(archive.prune, retention_start(now, self.retention_years))
        except StoreError as err:
            log.warning("energy history pruning failed error=%s", err)
            return
        if removed:
            log.info("energy history pruned rows=%d retention_years=%d", removed, self.retention_years)

    # ----------------------------------------------------------------- queries (the REST API)
    def now(self) -> float:
        """The meter clock: where the history ends."""
        return self.ctx.meter.latest.taken_at

    async def energy(self, buckets: Buckets, by: GroupBy) -> EnergyResult:
        """Energy per bucket and channel, role or group; the open hour from the live counters."""
        snap = self.ctx.meter.latest
        live = {
            c.index: LiveChannel(
                c.label, c.role.value, c.group_label, c.active_energy_imported, c.active_energy_exported
            )
            for c in snap.channels
        }
        return await self.ctx.database.call(energy, buckets, by, LiveState(snap.taken_at, live))

    async def import_device_history(
        self, history: DeviceHistory, channels: Sequence[ChannelConfig]
    ) -> HistoryImport:
        """The device's rows this archive lacks, before the first hour it has yet to write itself."""
        if self._seen is None:
            raise StoreError("the energy history is still catching up after the start; try again shortly")
        end = min([self._next_boundary, *(int(r[0]) for r in self._rows)])
        window = Window(retention_start(self.now(), self.retention_years), end)
        report = await import_history(self.ctx.database, history, attribution(channels), window)
        self.count("rowsImported", report.rows_added)
        self.spawn(self.files.warm(), "files")  # the changed files into memory
        log.info("device energy history imported %s", report.message())
        return report

    async def first_hour(self) -> int | None:
        return await self.ctx.database.call(archive.first_hour)

    def details(self) -> Mapping[str, Any]:
        return {
            "retentionYears": self.retention_years,
            "nextHour": self._next_boundary,
            "pendingRows": len(self._rows),
            "lastWrite": self._last_write,
        }
