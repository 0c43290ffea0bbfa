"""Energy per period from the archive: local-time buckets across daylight saving, resets, role changes.

The archive here is synthetic and exact: channel 0 imports 1000 Wh and channel 1 500 Wh every hour
of 2026, so every bucket's right answer is its length in hours times the rate.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from homemeter.store import archive
from homemeter.store.archive import HOUR, Event, RowStatus
from homemeter.store.history_query import (
    GroupBy,
    LiveChannel,
    LiveState,
    QueryError,
    Resolution,
    buckets,
    energy,
)

UTC = ZoneInfo("UTC")
T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
T1 = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
ROME, NEW_YORK = ZoneInfo("Europe/Rome"), ZoneInfo("America/New_York")
RATE = {0: 1000.0, 1: 500.0}  # Wh per hour
RESET_AT = int(datetime(2026, 6, 10, 12, 30, tzinfo=UTC).timestamp())  # channel 0 reset
ROLE_AT = int(datetime(2026, 7, 20, 6, 15, tzinfo=UTC).timestamp())  # channel 1: load -> pv


def counter(channel: int, t: float) -> float:
    """The raw counter at t: grows at RATE, zeroed by the reset (ch 0) or the role change (ch 1)."""
    since = {0: RESET_AT, 1: ROLE_AT}[channel]
    return RATE[channel] * ((t - since) if t >= since else (t - T0)) / HOUR


def live(t: float) -> LiveState:
    return LiveState(t, {
        0: LiveChannel("Grid", "grid", "Grid", counter(0, t), 0.0),
        1: LiveChannel("Roof", "pv", "Solar", counter(1, t), 0.0),
    })  # fmt: skip


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path: Path = tmp_path_factory.mktemp("history") / "energy.db"
    db = sqlite3.connect(path, isolation_level=None)
    archive.ensure_schema(db)
    rows = [(h, c, counter(c, h), 0.0, 0.0, 0.0, 0.0, 1, int(RowStatus.MEASURED))
            for h in range(T0, T1 + 1, HOUR) for c in (0, 1)]  # fmt: skip
    zero = (0.0, 0.0, 0.0, 0.0, 0.0)
    reset_from = (RATE[0] * (RESET_AT - T0) / HOUR, 0.0, 0.0, 0.0, 0.0)
    role_from = (RATE[1] * (ROLE_AT - T0) / HOUR, 0.0, 0.0, 0.0, 0.0)
    events = [
        Event(RESET_AT, 0, "reset", "grid", "grid", "Grid", "Grid", reset_from, zero),
        Event(ROLE_AT, 1, "role", "load", "pv", "Roof", "Solar", role_from, zero),
    ]
    archive.write(db, rows, events)
    yield db
    db.close()


def query(
    conn: sqlite3.Connection, start: datetime, end: datetime, res: Resolution, by: GroupBy = GroupBy.CHANNEL
) -> tuple[list[int], dict[str, list[float | None]]]:
    """Buckets in the time zone of `start`."""
    tz = start.tzinfo
    assert isinstance(tz, ZoneInfo)
    b = buckets(start, end, res, tz)
    result = energy(conn, b, by, live(T1))
    return b.hours, {s.key: s.imported for s in result.series}


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [(ROME, (2026, 3, 29), (2026, 10, 25)), (NEW_YORK, (2026, 3, 8), (2026, 11, 1))],
)
def test_daylight_saving_days_have_23_and_25_hours(
    conn: sqlite3.Connection, tz: ZoneInfo, spring: tuple[int, int, int], autumn: tuple[int, int, int]
) -> None:
    for (y, m, d), short_or_long in ((spring, 23), (autumn, 25)):
        start = datetime(y, m, d, tzinfo=tz) - timedelta(days=1)
        hours, series = query(conn, start, datetime(y, m, d, tzinfo=tz) + timedelta(days=2), Resolution.DAY)
        assert hours == [24, short_or_long, 24]
        assert series["0"] == [24_000.0, short_or_long * 1000.0, 24_000.0]
        day = datetime(y, m, d, tzinfo=tz)
        hourly, by_hour = query(conn, day, day + timedelta(days=1), Resolution.HOUR)
        assert len(hourly) == short_or_long and by_hour["1"] == [500.0] * short_or_long


@pytest.mark.parametrize(
    ("tz", "months"),
    [(ROME, {3: 743, 10: 745, 6: 720}), (NEW_YORK, {3: 743, 11: 721, 6: 720})],
)
def test_month_buckets_follow_local_months(
    conn: sqlite3.Connection, tz: ZoneInfo, months: dict[int, int]
) -> None:
    hours, series = query(conn, datetime(2026, 1, 1, tzinfo=tz), datetime(2026, 12, 1, tzinfo=tz),
                          Resolution.MONTH)  # fmt: skip
    assert len(hours) == 11
    for month, n in months.items():
        assert hours[month - 1] == n
        assert series["0"][month - 1] == pytest.approx(n * 1000.0)
    assert (
        sum(hours)
        == (datetime(2026, 12, 1, tzinfo=tz) - datetime(2026, 1, 1, tzinfo=tz)).total_seconds() / HOUR
    )


def test_a_reset_inside_a_bucket_keeps_its_sum(conn: sqlite3.Connection) -> None:
    _, series = query(conn, datetime(2026, 6, 10, tzinfo=UTC), datetime(2026, 6, 11, tzinfo=UTC),
                      Resolution.DAY)  # fmt: skip
    assert series["0"] == [pytest.approx(24_000.0)]
    # The hour holding the reset (12:00-13:00) is whole too: 30 min before it, 30 min after.
    _, hourly = query(conn, datetime(2026, 6, 10, 11, tzinfo=UTC), datetime(2026, 6, 10, 14, tzinfo=UTC),
                      Resolution.HOUR)  # fmt: skip
    assert hourly["0"] == pytest.approx([1000.0, 1000.0, 1000.0])
    _, year = query(conn, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
                    Resolution.YEAR)  # fmt: skip
    assert year["0"] == [pytest.approx(8760 * 1000.0)]


def test_a_role_change_splits_the_energy_between_the_roles(conn: sqlite3.Connection) -> None:
    day = (datetime(2026, 7, 20, tzinfo=UTC), datetime(2026, 7, 21, tzinfo=UTC))
    _, roles = query(conn, *day, Resolution.DAY, GroupBy.ROLE)
    assert roles["load"] == [pytest.approx(500.0 * 6.25)]  # until 06:15 a load
    assert roles["pv"] == [pytest.approx(500.0 * 17.75)]  # then PV
    assert roles["grid"] == [pytest.approx(24_000.0)]
    _, groups = query(conn, *day, Resolution.DAY, GroupBy.GROUP)
    assert groups["Roof"] == roles["load"] and groups["Solar"] == roles["pv"]
    _, months = query(conn, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
                      Resolution.MONTH, GroupBy.ROLE)  # fmt: skip
    assert months["pv"][:6] == [0.0] * 6 and months["load"][7:] == [0.0] * 5
    assert sum(v or 0 for v in months["load"] + months["pv"]) == pytest.approx(8760 * 500.0)


def test_outside_the_history_is_null_and_the_open_hour_comes_from_the_live_counters(
    conn: sqlite3.Connection,
) -> None:
    now = T1 - HOUR // 2  # 30 min into the last hour of 2026
    utc = ZoneInfo("UTC")
    b = buckets(
        datetime(2025, 12, 31, 23, tzinfo=utc), datetime(2027, 1, 1, 1, tzinfo=utc), Resolution.HOUR, utc
    )
    series = {s.key: s.imported for s in energy(conn, b, GroupBy.CHANNEL, live(now)).series}
    assert series["0"][0] is None  # before the archive
    assert series["0"][-2] == pytest.approx(500.0)  # the open hour so far
    assert series["0"][-1] is None  # after now


def test_too_many_buckets_and_empty_ranges_are_refused() -> None:
    utc = ZoneInfo("UTC")
    with pytest.raises(QueryError, match="coarser"):
        buckets(datetime(2016, 1, 1, tzinfo=utc), datetime(2026, 1, 1, tzinfo=utc), Resolution.HOUR, utc)
    with pytest.raises(QueryError, match="later"):
        buckets(datetime(2026, 1, 2, tzinfo=utc), datetime(2026, 1, 1, tzinfo=utc), Resolution.DAY, utc)


def test_half_hour_zones_use_the_utc_hour_containing_the_local_edge() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    b = buckets(
        datetime(2026, 1, 1, tzinfo=kolkata), datetime(2026, 1, 3, tzinfo=kolkata), Resolution.DAY, kolkata
    )
    assert [e % HOUR for e in b.edges] == [0, 0, 0]
    assert b.hours == [24, 24]
