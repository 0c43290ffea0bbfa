"""Energy per period from the hourly archive: buckets in any IANA time zone, per channel, role or group.

The archive holds cumulative counters at UTC hour boundaries, so a bucket's energy is the counter at
its end minus the counter at its start: a query reads only the rows at bucket edges (121 edges for ten
years by month), never every hour. A reset or role change inside a bucket splits it at the event: the
part before counts `before - start` under the old role, the part after `end - after` under the new one.

Buckets follow local civil time (a daylight-saving day has 23 or 25 hours). The archive is hourly, so
in a zone whose offset is not a whole hour (India, Nepal) a bucket edge falls on the UTC hour that
contains the local edge.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from homemeter.store import archive
from homemeter.store.archive import HOUR, Event

MAX_BUCKETS = 10_000  # a leap year of hours (8,784) fits; ten years of hours do not


class Resolution(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


class GroupBy(StrEnum):
    CHANNEL = "channel"
    ROLE = "role"
    GROUP = "group"


class QueryError(ValueError):
    """A query that cannot be answered as asked (the API answers 400 with the message)."""


@dataclass(frozen=True, slots=True)
class LiveChannel:
    """A channel as the meter shows it now: labels for the answer, counters for the open hour."""

    label: str
    role: str
    group: str
    imported: float
    exported: float


@dataclass(frozen=True, slots=True)
class LiveState:
    """The meter now: its clock (the end of the history) and every channel's labels and counters."""

    now: float
    channels: Mapping[int, LiveChannel]


@dataclass(frozen=True, slots=True)
class Buckets:
    starts: tuple[datetime, ...]  # local, aware
    end: datetime  # end of the last bucket
    edges: tuple[int, ...]  # epoch s of every start and the end, on UTC hours

    @property
    def hours(self) -> list[int]:
        return [(b - a) // HOUR for a, b in zip(self.edges, self.edges[1:], strict=False)]


@dataclass
class Series:
    key: str
    label: str
    role: str  # the role now (a group's channels share one): what the dashboard's balance sums
    channels: list[int]
    imported: list[float | None]
    exported: list[float | None]


@dataclass
class EnergyResult:
    buckets: Buckets
    series: list[Series]
    events: list[Event] = field(default_factory=list)


def _floor_hour(t: float) -> int:
    return math.floor(t / HOUR) * HOUR


def _align(t: datetime, resolution: Resolution) -> date | datetime:
    if resolution is Resolution.HOUR:
        return t.replace(minute=0, second=0, microsecond=0)
    if resolution is Resolution.DAY:
        return t.date()
    if resolution is Resolution.MONTH:
        return t.date().replace(day=1)
    return t.date().replace(month=1, day=1)


def _next(d: date, resolution: Resolution) -> date:
    if resolution is Resolution.DAY:
        return d + timedelta(days=1)
    if resolution is Resolution.MONTH:
        return date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return date(d.year + 1, 1, 1)


def buckets(start: datetime, end: datetime, resolution: Resolution, tz: ZoneInfo) -> Buckets:
    """The buckets covering [start, end) in `tz`; the first starts at or before `start`."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    if end <= start:
        raise QueryError("to: must be later than from")
    stop = end.timestamp()
    edges: list[int] = []
    if resolution is Resolution.HOUR:
        t = _floor_hour(start.timestamp())
        while True:
            edges.append(t)
            if t >= stop or len(edges) > MAX_BUCKETS + 1:
                break
            t += HOUR
    else:
        day = _align(start, resolution)
        assert isinstance(day, date)
        while True:
            at = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
            t = _floor_hour(at)
            if not edges or t > edges[-1]:
                edges.append(t)
            if at >= stop or len(edges) > MAX_BUCKETS + 1:
                break
            day = _next(day, resolution)
    if len(edges) > MAX_BUCKETS + 1:
        raise QueryError(f"more than {MAX_BUCKETS} buckets: choose a coarser resolution or a shorter range")
    starts = tuple(datetime.fromtimestamp(e, tz) for e in edges)
    return Buckets(starts[:-1], starts[-1], tuple(edges))


def _edge_values(
    conn: sqlite3.Connection, edges: Sequence[int], first: int, last: int, state: LiveState
) -> dict[int, list[tuple[float, float]]]:
    """channel -> (imported, exported) at every edge: archived rows, live counters past the archive."""
    now, live = state.now, state.channels
    inside = sorted({min(max(e, first), last) for e in edges if e <= last and e <= now})
    if len(inside) > 1 and (inside[-1] - inside[0]) // HOUR < 4 * len(inside):  # dense: one range scan
        wanted = set(inside)
        rows = archive.active_between(conn, inside[0], inside[-1])
        found = {(h, c): (i, x) for h, c, i, x in rows if h in wanted}
    else:
        found = archive.active_at(conn, inside)
    channels = sorted({c for _, c in found} | set(live))
    out: dict[int, list[tuple[float, float]]] = {}
    for c in channels:
        values = []
        for e in edges:
            if e > last or e > now:
                now_value = live.get(c)
                if now_value is not None:
                    values.append((now_value.imported, now_value.exported))
                    continue
            key = (min(max(e, first), last), c)
            value = found.get(key)
            if value is None:
                value = archive.channel_active_before(conn, c, key[0]) or (0.0, 0.0)
            values.append(value)
        out[c] = values
    return out


def energy(conn: sqlite3.Connection, b: Buckets, by: GroupBy, state: LiveState) -> EnergyResult:
    """Imported and exported active energy (Wh) per bucket and series; None outside the history."""
    edges, now, live = b.edges, state.now, state.channels
    first, last = archive.first_hour(conn), archive.last_hour(conn)
    n = len(edges) - 1
    if first is None or last is None:
        return EnergyResult(b, [])
    valid = [edges[k + 1] > first and edges[k] < now for k in range(n)]
    values = _edge_values(conn, edges, first, last, state)
    events = archive.events_between(conn, edges[0], math.inf)
    by_channel: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        by_channel[e.channel].append(e)
    sums: dict[str, tuple[list[float], list[float]]] = {}
    members: dict[str, set[int]] = defaultdict(set)
    for c, vals in values.items():
        now_state = live.get(c)
        tail = (now_state.role, now_state.group) if now_state else ("load", f"Channel {c}")
        key_of = _key_function(c, by)
        for key, k, imp, exp in _channel_parts(vals, edges, by_channel[c], tail, key_of):
            acc = sums.setdefault(key, ([0.0] * n, [0.0] * n))
            acc[0][k] += imp
            acc[1][k] += exp
            members[key].add(c)
    series = []
    for key in sorted(sums, key=lambda x: (by is GroupBy.CHANNEL and int(x), x)):
        imp_sums, exp_sums = sums[key]
        label = key
        if by is GroupBy.CHANNEL:
            found = live.get(int(key))
            label = found.label if found else f"Channel {key}"
        imported = [round(v, 3) if ok else None for v, ok in zip(imp_sums, valid, strict=True)]
        exported = [round(v, 3) if ok else None for v, ok in zip(exp_sums, valid, strict=True)]
        role = _role_of(key, by, live, members[key])
        series.append(Series(key, label, role, sorted(members[key]), imported, exported))
    return EnergyResult(b, series, [e for e in events if e.at < edges[-1]])


def _role_of(key: str, by: GroupBy, live: Mapping[int, LiveChannel], members: set[int]) -> str:
    """A series' role: its key by role; else that of a member channel that still belongs to it."""
    if by is GroupBy.ROLE:
        return key
    for c in sorted(members):
        now = live.get(c)
        if now is not None and (by is GroupBy.CHANNEL or now.group == key):
            return now.role
    return "load"  # a group that no longer exists: the factory role


def _key_function(channel: int, by: GroupBy) -> Callable[[tuple[str, str]], str]:
    """The series a part of `channel` belongs to, from the (role, group) it had then."""
    if by is GroupBy.CHANNEL:
        return lambda who: str(channel)
    if by is GroupBy.ROLE:
        return lambda who: who[0]
    return lambda who: who[1]


def _channel_parts(
    vals: list[tuple[float, float]],
    edges: Sequence[int],
    events: list[Event],
    tail: tuple[str, str],
    key_of: Callable[[tuple[str, str]], str],
) -> list[tuple[str, int, float, float]]:
    """(series key, bucket, imported, exported) of one channel, split at its events.

    `tail` is the channel's (role, group) after its last event: its state now.
    """
    parts = []
    p = 0  # next event of this channel
    for k in range(len(edges) - 1):
        while p < len(events) and events[p].at < edges[k]:
            p += 1
        level = vals[k]
        while p < len(events) and events[p].at < edges[k + 1]:
            e = events[p]
            parts.append((key_of((e.role_before, e.group_before)), k, *_gain(level, e.before)))
            level = (e.after[0], e.after[1])
            p += 1
        after = (events[p].role_before, events[p].group_before) if p < len(events) else tail
        parts.append((key_of(after), k, *_gain(level, vals[k + 1])))
    return parts


def _gain(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Active imported and exported growth from counters `a` to `b`.

    A drop the archive saw no event for (a database restored offline) counts nothing, never negative.
    """
    return max(0.0, b[0] - a[0]), max(0.0, b[1] - a[1])
