"""The history archive component against a hand-driven meter and a real `energy.db`.

Each test publishes snapshots at chosen meter times, so hour boundaries, stops and restarts happen
exactly where the test says.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from homemeter.config.roles import Role
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.archive import HOUR, RowStatus
from homemeter.store.energy_store import EnergyStore
from homemeter.store.history import HistoryArchive, retention_start
from homemeter.store.history_query import GroupBy, LiveState, Resolution, buckets, energy
from tests.unit.fake_meter import FakeMeter, context, reading

H0 = 1_774_000_800  # an hour boundary (2026-03-20T10:00:00Z)


def totals(wh: float) -> EnergyTotals:
    return EnergyTotals(wh, wh / 10, wh / 100, 0.0, wh * 1.1)


def rows(data_dir: Path) -> list[tuple[int, int, float, int]]:
    """(hour, channel, active imported, status), read as any other process would."""
    conn = sqlite3.connect(f"file:{data_dir / 'energy.db'}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT hour, channel, active_imported, status FROM history_hour ORDER BY hour, channel"
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


class Service:
    """One run of the archive: a store, a fake meter starting at `t` with `wh` on two channels."""

    def __init__(self, data_dir: Path, t: float, wh: float) -> None:
        self.store = EnergyStore(data_dir)
        self.store.open()
        self.meter = FakeMeter(t, [reading(0, totals(wh), Role.GRID), reading(1, totals(wh / 2))])
        self.archive = HistoryArchive(context(data_dir, self.meter, self.store))

    def publish(self, t: float, wh: float, role: Role = Role.LOAD) -> None:
        self.meter.publish(t, [reading(0, totals(wh), Role.GRID), reading(1, totals(wh / 2), role)])

    async def start(self) -> None:
        """Start, and wait until the hours missed while down are recorded."""
        await self.archive.start()
        await wait_async(lambda: self.archive._seen is not None)

    async def settle(self) -> None:
        """Wait until the archive has taken the latest snapshot and committed what it brought."""
        archive, seq = self.archive, self.meter.latest.seq
        await wait_async(lambda: archive._seen is not None and archive._seen.seq == seq and not archive._rows)

    async def stop(self) -> None:
        await self.archive.stop()
        self.store.close()


async def wait_async(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_first_start_records_the_open_hour_start_and_each_boundary_interpolated(data_dir: Path) -> None:
    svc = Service(data_dir, H0 + 600, 1000.0)
    await svc.start()
    assert rows(data_dir) == [(H0, 0, 1000.0, RowStatus.MISSED), (H0, 1, 500.0, RowStatus.MISSED)]
    svc.publish(H0 + 3000, 1600.0)
    await svc.settle()
    assert len(rows(data_dir)) == 2, "no row before the hour closes"
    # 1600 Wh at 50 min, 1800 Wh at 70 min: the counter at the boundary (60 min) is 1700 Wh.
    svc.publish(H0 + HOUR + 600, 1800.0)
    await svc.settle()
    assert rows(data_dir)[2:] == [(H0 + HOUR, 0, 1700.0, 0), (H0 + HOUR, 1, 850.0, 0)]
    # A snapshot that jumps over several boundaries (the meter ran faster) archives every one.
    svc.publish(H0 + 4 * HOUR + 600, 2100.0)
    await svc.settle()
    hours = [r[0] for r in rows(data_dir) if r[1] == 0]
    assert hours == [H0 + k * HOUR for k in range(5)]
    expected = [1800.0 + 300.0 * (k * HOUR - 600) / (3 * HOUR) for k in (1, 2, 3)]
    assert [r[2] for r in rows(data_dir) if r[1] == 0][2:] == pytest.approx(expected)
    await svc.stop()


async def test_an_archive_from_before_drops_its_unread_rev_column_and_keeps_its_rows(data_dir: Path) -> None:
    svc = Service(data_dir, H0 + 600, 1000.0)
    await svc.start()
    await svc.stop()
    conn = sqlite3.connect(data_dir / "energy.db")
    with conn:  # the column databases written before 2026-11-29 have
        conn.execute("ALTER TABLE history_hour ADD COLUMN rev INTEGER NOT NULL DEFAULT 7")
    conn.close()
    first_hour = [r for r in rows(data_dir) if r[0] == H0]
    again = Service(data_dir, H0 + 900, 1000.0)
    await again.start()
    conn = sqlite3.connect(f"file:{data_dir / 'energy.db'}?mode=ro", uri=True)
    columns = [c[1] for c in conn.execute("PRAGMA table_info(history_hour)")]
    conn.close()
    assert "rev" not in columns and "status" in columns
    assert [r for r in rows(data_dir) if r[0] == H0] == first_hour
    again.publish(H0 + HOUR + 600, 1200.0)
    await again.settle()
    at_boundary = 1000.0 + 200.0 * 2700 / 3300  # 1000 Wh at 15 min, 1200 Wh at 70 min
    assert rows(data_dir)[-2:] == [
        (H0 + HOUR, 0, pytest.approx(at_boundary), RowStatus.MEASURED),
        (H0 + HOUR, 1, pytest.approx(at_boundary / 2), RowStatus.MEASURED),
    ]
    await again.stop()


async def test_clean_stop_writes_the_open_hour_provisionally_a_restart_replaces_it(data_dir: Path) -> None:
    svc = Service(data_dir, H0 + 60, 1000.0)
    await svc.start()
    svc.publish(H0 + 1800, 1234.5)
    await svc.stop()
    assert rows(data_dir)[-2:] == [(H0 + HOUR, 0, 1234.5, RowStatus.PROVISIONAL),
                                   (H0 + HOUR, 1, 617.25, RowStatus.PROVISIONAL)]  # fmt: skip
    # Restart within the same hour: the provisional row goes, the hour is written when it closes.
    again = Service(data_dir, H0 + 1900, 1234.5)
    await again.start()
    assert max(r[0] for r in rows(data_dir)) == H0
    again.publish(H0 + HOUR + 100, 1300.0)
    await again.settle()
    assert rows(data_dir)[-2][2:] == (1300.0 - 65.5 * 100 / 1800, RowStatus.MEASURED)
    await again.stop()


async def test_hours_missed_while_down_get_the_last_saved_totals_flagged(data_dir: Path) -> None:
    svc = Service(data_dir, H0 + 60, 1000.0)
    await svc.start()
    svc.publish(H0 + HOUR + 60, 1100.0)
    await svc.settle()
    # kill -9: no stop, no provisional row. The persister had saved 1100 Wh; back 3 h later.
    svc.store.close()
    later = Service(data_dir, H0 + 4 * HOUR + 300, 1100.0)
    await later.start()
    ch0 = [(h, wh, status) for h, c, wh, status in rows(data_dir) if c == 0]
    assert ch0[2:] == [(H0 + k * HOUR, 1100.0, RowStatus.MISSED) for k in (2, 3, 4)]
    assert ch0[1][2] == RowStatus.MEASURED, "the closed hour before the crash is untouched"
    await later.stop()


async def test_reset_and_role_change_are_events_and_the_boundary_keeps_the_counter_before(
    data_dir: Path,
) -> None:
    svc = Service(data_dir, H0 + 60, 1000.0)
    await svc.start()
    svc.publish(H0 + 3500, 1500.0)
    await svc.settle()
    svc.publish(H0 + HOUR + 100, 0.0)  # reset of both channels just after the boundary
    await svc.settle()
    assert [r[2] for r in rows(data_dir) if r[0] == H0 + HOUR] == [1500.0, 750.0]
    svc.publish(H0 + HOUR + 200, 10.0, role=Role.PV)  # a role change (the meter zeroes the counters)
    await svc.settle()
    svc.publish(H0 + HOUR + 300, 0.0, role=Role.PV)
    await svc.settle()
    await svc.stop()
    conn = sqlite3.connect(data_dir / "energy.db")
    events = conn.execute(
        "SELECT at, channel, kind, role_before, role_after, before_active_imported, after_active_imported "
        "FROM history_event ORDER BY at, channel"
    ).fetchall()
    conn.close()
    assert events[:2] == [(H0 + HOUR + 100, 0, "reset", "grid", "grid", 1500.0, 0.0),
                          (H0 + HOUR + 100, 1, "reset", "load", "load", 750.0, 0.0)]  # fmt: skip
    assert (H0 + HOUR + 200, 1, "role", "load", "pv", 0.0, 5.0) in events
    assert events[-2:] == [(H0 + HOUR + 300, 0, "reset", "grid", "grid", 10.0, 0.0),
                           (H0 + HOUR + 300, 1, "reset", "pv", "pv", 5.0, 0.0)]  # fmt: skip


async def test_a_role_changed_while_down_is_recorded_at_start(data_dir: Path) -> None:
    svc = Service(data_dir, H0 + 60, 1000.0)
    await svc.start()
    await svc.stop()
    later = Service(data_dir, H0 + 600, 1000.0)
    later.meter.publish(H0 + 600, [reading(0, totals(1000.0), Role.GRID), reading(1, totals(0.0), Role.PV)])
    await later.start()
    await later.stop()
    conn = sqlite3.connect(data_dir / "energy.db")
    kinds = conn.execute("SELECT channel, kind, role_before, role_after FROM history_event").fetchall()
    conn.close()
    assert kinds == [(1, "role", "load", "pv")]


async def test_retention_prunes_old_hours(data_dir: Path) -> None:
    svc = Service(data_dir, H0 + 60, 1000.0)
    svc.archive.retention_years = 2
    await svc.start()
    await svc.stop()
    three_years = 3 * 366 * 86_400
    later = Service(data_dir, H0 + three_years, 1000.0)
    later.archive.retention_years = 2
    await later.start()
    hours = sorted({r[0] for r in rows(data_dir)})
    await later.stop()
    # Two years back to the same UTC date; the gap before it is neither filled nor kept.
    assert hours[0] == retention_start(H0 + three_years, 2) > H0
    assert hours == list(range(hours[0], hours[-1] + HOUR, HOUR))


async def test_counters_lowered_while_down_change_before_the_missed_hours_so_earlier_energy_stays(
    data_dir: Path,
) -> None:
    svc = Service(data_dir, H0 + 60, 1000.0)
    await svc.start()
    svc.publish(H0 + HOUR + 60, 1100.0)
    await svc.settle()
    await svc.stop()  # the open hour's row at H0 + 2 h holds 1100 Wh
    later = Service(data_dir, H0 + 5 * HOUR + 300, 10.0)  # totals restored lower while down
    await later.start()
    await later.stop()
    conn = sqlite3.connect(data_dir / "energy.db")
    try:
        events = conn.execute("SELECT at, channel, kind, before_active_imported, after_active_imported "
                              "FROM history_event ORDER BY channel").fetchall()  # fmt: skip
        utc = ZoneInfo("UTC")
        start, end = datetime.fromtimestamp(H0, utc), datetime.fromtimestamp(H0 + 5 * HOUR, utc)
        result = energy(
            conn, buckets(start, end, Resolution.DAY, utc), GroupBy.CHANNEL, LiveState(end.timestamp(), {})
        )
    finally:
        conn.close()
    # Just before the first missed hour (H0 + 3 h), which already carries the lowered counters.
    first_missed = H0 + 3 * HOUR
    assert events == [
        (first_missed - 1, 0, "reset", 1100.0, 10.0),
        (first_missed - 1, 1, "reset", 550.0, 5.0),
    ]
    assert result.series[0].imported == [pytest.approx(100.0)]
