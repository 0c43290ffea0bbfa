"""The device's energy history merged into the hourly archive: only what is missing, no negative energy.

A row whose channel and hour the archive already has is left out (the archive's row wins), so an
import can be repeated and adds nothing the second time. The device's rows become rows of status
IMPORTED (active energy only; the device logs nothing else).

Sums over the archive are counter differences, so every place where the counter sequence is not
one meter counting up gets an event (archive.py), exactly as the live archive records them:
- a device counter that goes down (the device lost energy at a power cut, or was set lower) is a
  `reset` between its two rows; one that jumps up faster than the meter's power limit allows is a
  `set`. Both are listed in the report and never counted as energy.
- where the device's rows meet homemeter's own (another meter, other counters), a junction event
  switches from one counter to the other. If both have the same hour, that hour's energy comes from
  the side that measured it; counters that continue (homemeter's totals taken from the device)
  need no event.
- the device's rows are credited to the role and group the channel has in the configuration
  (restored from the device's backup first); where homemeter's own rows credit another role (a
  role changed since), the junction event says so.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from homemeter.component import Database
from homemeter.config.channel import MAX_CHANNELS, ChannelConfig
from homemeter.meter.reading import POWER_LIMIT
from homemeter.store import archive
from homemeter.store.archive import HOUR, Event, HourRow, RowStatus
from homemeter.store.device_history import FOLDERS, ChannelRows, DeviceHistory, FolderCount
from homemeter.store.energy_files import make_file_days

TOLERANCE = 1.0  # Wh: the device prints whole Wh, so counters this close are the same reading
SET_MARGIN = 1.0  # Wh on top of the power limit, as the live archive
BATCH_ROWS = 10_000  # rows per transaction: the live archive and totals saves wait at most one
LISTED = 100  # decreases and jumps listed in a report (all are counted)

Credit = tuple[str, str]  # (role, group label) that energy is counted under
#: channel -> the credit of the device's rows
Attribution = Mapping[int, Credit]
Counters = tuple[float, ...]


@dataclass(frozen=True, slots=True)
class CounterChange:
    """A device counter that went down or jumped between two of its rows."""

    channel: int
    hour: int  # the row with the new level (epoch s)
    before: tuple[float, float]  # active imported, exported (Wh) at the row before
    after: tuple[float, float]


@dataclass
class HistoryImport:
    """What an import did."""

    folders: dict[str, FolderCount]
    skipped_files: dict[str, str]
    decreases: list[CounterChange] = field(default_factory=list)  # the first LISTED
    decrease_count: int = 0
    jumps: list[CounterChange] = field(default_factory=list)
    jump_count: int = 0
    junctions: int = 0  # events joining the device's rows to homemeter's own
    rows_added: int = 0

    def message(self) -> str:
        per_folder = ", ".join(f"{name} {self.folders[name].imported}" for name in FOLDERS)
        already = sum(c.alreadyArchived + c.repeated for c in self.folders.values())
        text = f"energy history: {self.rows_added} hourly rows added ({per_folder}), {already} already there"
        out_of_range = sum(c.outOfRange for c in self.folders.values())
        invalid = sum(c.invalid for c in self.folders.values())
        if out_of_range:
            text += f", {out_of_range} outside the archived period (not closed yet or past the retention)"
        if invalid:
            text += f", {invalid} invalid lines"
        if self.decrease_count:
            text += f"; {self.decrease_count} counter decreases (not counted as energy)"
        if self.jump_count:
            text += f"; {self.jump_count} counter jumps beyond the power limit (not counted as energy)"
        if self.skipped_files:
            text += f"; {len(self.skipped_files)} files skipped"
        return text


def attribution(channels: Sequence[ChannelConfig]) -> dict[int, Credit]:
    """Every channel the device can have, credited as configured here (factory settings beyond)."""
    found = {c.index: (c.role.value, c.groupLabel) for c in channels}
    for index in range(MAX_CHANNELS):
        if index not in found:
            default = ChannelConfig.default(index)
            found[index] = (default.role.value, default.groupLabel)
    return found


class Window(NamedTuple):
    """The hours an import may add: from the retention's first hour to the first one homemeter
    writes itself (exclusive)."""

    first: int
    end: int


class _Point(NamedTuple):
    """One hour of a channel: the device's counters and/or the archive's."""

    hour: int
    device: tuple[float, float] | None
    own: Counters | None  # the archive's five counters
    folder: int  # index into FOLDERS (device rows)
    imported: bool = False  # the archive's row came from an earlier import (of the device's rows)

    @property
    def new(self) -> bool:
        return self.own is None


@dataclass
class _Batch:
    rows: list[HourRow] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    channel_done: bool = False


def _five(device: tuple[float, float]) -> Counters:
    return (device[0], device[1], 0.0, 0.0, 0.0)


def _close(a: Counters, b: Counters) -> bool:
    return abs(a[0] - b[0]) <= TOLERANCE and abs(a[1] - b[1]) <= TOLERANCE


def _continuous(a: Counters, b: Counters, limit: float) -> bool:
    """`b` can follow `a` on one meter: not lower (but for rounding), not faster than the limit."""
    return all(a[i] - TOLERANCE <= b[i] <= a[i] + limit for i in (0, 1))


class _Planner:
    """Walks each channel's device rows against the archive's, yielding rows and events to add."""

    def __init__(self, history: DeviceHistory, attribution: Attribution, window: Window) -> None:
        self.history = history
        self.attribution = attribution
        self.window = window
        self.report = HistoryImport(history.folders, history.skipped_files)
        self._counts = [history.folders[name] for name in FOLDERS]
        self._roles: list[tuple[float, str, str]] = []  # the channel's archived events
        self._times: list[float] = []

    def batches(self, conn: Any) -> Iterator[_Batch]:
        """Runs on the database's thread (each `next` is one `Database.call`)."""
        for channel in sorted(self.history.channels):
            yield from self._channel(conn, channel, self.history.channels[channel])

    def _device_points(self, rows: ChannelRows) -> list[tuple[int, float, float, int]]:
        """The channel's device rows in hour order: the first copy of an hour, inside the range."""
        out = []
        last = None
        hours, folders = rows.hours, rows.folder
        for i in sorted(range(len(rows)), key=lambda i: (hours[i], folders[i])):  # yearly's copy first
            hour, folder = hours[i], folders[i]
            if hour == last:
                self._counts[folder].repeated += 1
                continue
            last = hour
            if not self.window.first <= hour < self.window.end:
                self._counts[folder].outOfRange += 1
                continue
            out.append((hour, rows.imported[i], rows.exported[i], folder))
        return out

    def _channel(self, conn: Any, channel: int, rows: ChannelRows) -> Iterator[_Batch]:
        device = self._device_points(rows)
        if not device:
            yield _Batch(channel_done=True)
            return
        existing = archive.channel_rows_around(conn, channel, device[0][0], device[-1][0])
        self._roles = archive.channel_event_roles(conn, channel)
        self._times = [at for at, _, _ in self._roles]
        points = _merge(device, existing)
        batch = _Batch()
        for i, q in enumerate(points):
            if q.device is not None:
                count = self._counts[q.folder]
                if q.new:
                    row = (q.hour, channel, *_five(q.device), 1, int(RowStatus.IMPORTED))
                    batch.rows.append(row)
                    count.imported += 1
                else:
                    count.alreadyArchived += 1
            if i and (points[i - 1].new or q.new):
                batch.events.extend(self._pair(channel, points[i - 1], q))
            # A junction after a new row goes with that row: never end a batch between them.
            joins_next = q.new and i + 1 < len(points) and not points[i + 1].new
            if len(batch.rows) >= BATCH_ROWS and not joins_next:
                yield batch
                batch = _Batch()
        batch.channel_done = True
        yield batch

    def _theirs(self, at: float, channel: int, point: _Point) -> Credit:
        """Who the archive credits its row `point` (near `at`) to: the role before its next event,
        or now; a row an earlier import added is the device's, credited as the device's rows."""
        mine = self.attribution[channel]
        if point.imported:
            return mine
        k = bisect.bisect_right(self._times, at)
        if k < len(self._roles):
            return self._roles[k][1], self._roles[k][2]
        return mine

    def _pair(self, channel: int, p: _Point, q: _Point) -> list[Event]:
        """The events between two neighbouring hours of a channel, at least one of them new."""
        limit = POWER_LIMIT * (q.hour - p.hour) / HOUR + SET_MARGIN
        mine = self.attribution[channel]
        events = []
        if p.device is not None and q.device is not None:
            if p.own is not None:  # the archive has p too: its counter gives way to the device's
                at = p.hour + 1
                credits = (self._theirs(at, channel, p), mine)
                events += self._join(channel, at, (p.own, _five(p.device)), credits)
            events += self._step(channel, p, q, limit)
            if q.own is not None:  # and back to the archive's at q
                at = q.hour - 1
                credits = (mine, self._theirs(at, channel, q))
                events += self._join(channel, at, (_five(q.device), q.own), credits)
        elif p.own is not None and q.device is not None:  # the archive's rows end at p, the device's start
            d, at = _five(q.device), q.hour - 1
            before = d if _continuous(p.own, d, limit) else p.own
            events += self._join(channel, at, (before, d), (self._theirs(at, channel, p), mine))
        elif p.device is not None and q.own is not None:  # the device's rows end at p, the archive's start
            d, at = _five(p.device), q.hour - 1
            before = q.own if _continuous(d, q.own, limit) else d
            events += self._join(channel, at, (before, q.own), (mine, self._theirs(at, channel, q)))
        return events

    def _join(
        self, channel: int, at: float, counters: tuple[Counters, Counters], credits: tuple[Credit, Credit]
    ) -> list[Event]:
        """Where the counters change from one meter's to the other's, or the credit does: an event.

        With counters that continue (`before` equal to `after`) only a change of credit needs one.
        """
        (before, after), (who, then) = counters, credits
        same = _close(before, after)
        if same and who == then:
            return []
        if who[0] != then[0]:
            kind = "role"
        elif not same:
            kind = "reset" if after[0] < before[0] or after[1] < before[1] else "set"
        else:
            kind = "group"
        self.report.junctions += 1
        return [Event(at, channel, kind, who[0], then[0], who[1], then[1], before, after)]

    def _step(self, channel: int, p: _Point, q: _Point, limit: float) -> list[Event]:
        """Between two device rows: a counter that went down or jumped is an event, not energy.

        Only the counters that changed so are cut; the other one's growth stays before the event.
        """
        assert p.device is not None and q.device is not None
        a, b = p.device, q.device
        if b[0] < a[0] or b[1] < a[1]:
            kind, listed = "reset", self.report.decreases
            self.report.decrease_count += 1
            odd = [b[i] < a[i] for i in (0, 1)]
        elif b[0] - a[0] > limit or b[1] - a[1] > limit:
            kind, listed = "set", self.report.jumps
            self.report.jump_count += 1
            odd = [b[i] - a[i] > limit for i in (0, 1)]
        else:
            return []
        if len(listed) < LISTED:
            listed.append(CounterChange(channel, q.hour, a, b))
        before = (a[0] if odd[0] else b[0], a[1] if odd[1] else b[1])
        mine = self.attribution[channel]
        return [Event(p.hour + 2, channel, kind, mine[0], mine[0], mine[1], mine[1], _five(before), _five(b))]


def _own(row: HourRow) -> _Point:
    """An archive row (hour, five counters, status) as a point without the device's counters."""
    return _Point(int(row[0]), None, tuple(row[1:6]), -1, row[6] == RowStatus.IMPORTED)


def _merge(device: list[tuple[int, float, float, int]], existing: list[HourRow]) -> list[_Point]:
    """The device's rows and the archive's (both in hour order) as one sequence of hours."""
    points = []
    j = 0
    for hour, imported, exported, folder in device:
        while j < len(existing) and existing[j][0] < hour:
            points.append(_own(existing[j]))
            j += 1
        if j < len(existing) and existing[j][0] == hour:
            points.append(_own(existing[j])._replace(device=(imported, exported), folder=folder))
            j += 1
        else:
            points.append(_Point(hour, (imported, exported), None, folder))
    points.extend(_own(r) for r in existing[j:])
    return points


def _write_next(conn: Any, batches: Iterator[_Batch]) -> tuple[int, bool] | None:
    batch = next(batches, None)
    if batch is None:
        return None
    return archive.add(conn, batch.rows, batch.events), batch.channel_done


async def import_history(
    db: Database,
    history: DeviceHistory,
    attribution: Attribution,
    window: Window,
    channel_done: Callable[[], None] = lambda: None,
) -> HistoryImport:
    """Add the device's rows inside `window` that the archive lacks, channel by channel.

    Planned and written in batches on the database's thread, so the live archive and the totals
    saves go on meanwhile; an interrupted import leaves whole batches (each row with its events)
    and a repeated one adds the rest.
    """
    planner = _Planner(history, attribution, window)
    await db.call(archive.ensure_schema)
    batches = await db.call(planner.batches)
    while (written := await db.call(_write_next, batches)) is not None:
        planner.report.rows_added += written[0]
        if written[1]:
            channel_done()
    # The device-file pieces of the closed days that got rows: the first read of a file after the
    # import finds them.
    await make_file_days(db, window.end // archive.DAY)
    return planner.report
