"""The device's history files into a real `energy.db` archive, read back through the query API's code.

The device's counters (tests/device_files.py) are known per hour, so every hour's right answer is
a counter difference; where homemeter's own rows meet them, its own differences.
"""

from __future__ import annotations

import gzip
import io
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Role
from homemeter.errors import StoreError
from homemeter.store import archive, history_import
from homemeter.store.archive import HOUR, Event, RowStatus
from homemeter.store.backup import write_archive
from homemeter.store.device_history import DeviceHistory, is_device_archive, read_device_archive
from homemeter.store.energy_store import EnergyStore
from homemeter.store.history_import import HistoryImport, Window, attribution, import_history
from homemeter.store.history_query import GroupBy, LiveChannel, LiveState, Resolution, buckets, energy
from homemeter.store.offline_import import current_config
from tests.device_files import (
    DROP,
    HOURS,
    OTHER_FILES,
    counters,
    csv,
    device_files,
    expected_hourly,
    filesystem_tar,
    lines,
)

START = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
WINDOW = Window(0, START + 1000 * HOUR)
CREDIT = attribution(())  # factory settings: channel 0 grid, channel 1 load
HOMEMETER_FROM = 70  # where homemeter's own rows begin in the tests that have them


def parsed(files: dict[str, bytes]) -> DeviceHistory:
    history = DeviceHistory()
    for path, content in files.items():
        history.add_file(path, content)
    return history


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EnergyStore]:
    db = EnergyStore(tmp_path)
    db.open()
    await db.call(archive.ensure_schema)
    yield db
    db.close()


async def run(store: EnergyStore, files: dict[str, bytes], credit: Any = CREDIT) -> HistoryImport:
    return await import_history(store, parsed(files), credit, WINDOW)


def hours_of(first: int, last: int, resolution: Resolution = Resolution.HOUR) -> Any:
    """UTC buckets from hour `first` to hour `last` after START."""
    utc = ZoneInfo("UTC")
    start, end = (datetime.fromtimestamp(START + k * HOUR, utc) for k in (first, last))
    return buckets(start, end, resolution, utc)


async def hourly(store: EnergyStore, channel: int, first: int = 0, last: int = HOURS - 1) -> list[Any]:
    """(imported, exported) Wh of each hour k in [first, last) as the query API computes them."""
    result = await store.call(energy, hours_of(first, last), GroupBy.CHANNEL, LiveState(WINDOW.end, {}))
    series = {s.key: s for s in result.series}[str(channel)]
    return list(zip(series.imported, series.exported, strict=True))


async def homemeter_rows(store: EnergyStore, until: int = 90, events: list[Event] | None = None) -> None:
    """homemeter's own meter from hour HOMEMETER_FROM: counters from 0, 100 Wh an hour."""
    rows = [
        (START + k * HOUR, c, 100.0 * (k - HOMEMETER_FROM), 0.0, 0.0, 0.0, 0.0, 1, int(RowStatus.MEASURED))
        for k in range(HOMEMETER_FROM, until + 1)
        for c in (0, 1)
    ]
    await store.call(archive.write, rows, events or [])


def table(path: Path) -> tuple[list[Any], list[Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT hour, channel, active_imported, active_exported, status FROM history_hour ORDER BY 1, 2"
        ).fetchall()
        events = conn.execute("SELECT * FROM history_event ORDER BY at, channel").fetchall()
    finally:
        conn.close()
    return rows, events


async def test_the_device_files_fill_the_archive_and_a_decrease_is_no_energy(store: EnergyStore) -> None:
    report = await run(store, device_files(START))
    counts = {n: (c.files, c.rows, c.imported, c.repeated, c.invalid) for n, c in report.folders.items()}
    assert counts == {"yearly": (1, 96, 96, 0, 0), "monthly": (1, 48, 48, 0, 0), "daily": (2, 61, 12, 49, 1)}
    assert "line 9: invalid literal for int()" in report.folders["daily"].firstProblem
    assert report.rows_added == 2 * HOURS
    assert [(d.channel, d.hour, d.before, d.after) for d in report.decreases] == [
        (1, START + DROP * HOUR, counters(1, DROP - 1), counters(1, DROP))
    ]
    for channel in (0, 1):
        assert await hourly(store, channel) == expected_hourly(channel)
    # The closed days' device-file pieces are made by the import: the first read of a file finds them.
    assert await store.call(archive.build_file_days, 0, WINDOW.end // archive.DAY) == 0
    assert await store.call(archive.file_days, 0, WINDOW.end // archive.DAY)

    again = await run(store, device_files(START))
    assert again.rows_added == 0 and again.decrease_count == 0
    assert sum(c.alreadyArchived for c in again.folders.values()) == 2 * HOURS


async def test_where_homemeters_rows_begin_each_hour_keeps_the_meter_that_measured_it(
    store: EnergyStore,
) -> None:
    await homemeter_rows(store)
    report = await run(store, device_files(START))
    assert report.rows_added == 2 * HOMEMETER_FROM
    assert sum(c.alreadyArchived for c in report.folders.values()) == 2 * (HOURS - HOMEMETER_FROM)
    own = [(100.0, 0.0)] * (90 - HOMEMETER_FROM)
    assert await hourly(store, 0, last=90) == expected_hourly(0)[:HOMEMETER_FROM] + own
    # A day across the junction: the device's hours, then homemeter's; never the jump between them.
    days = hours_of(0, 90, Resolution.DAY)
    result = await store.call(energy, days, GroupBy.CHANNEL, LiveState(WINDOW.end, {}))
    day3 = {s.key: s.imported[2] for s in result.series}
    device_part = sum(e[0] for e in expected_hourly(1)[48:HOMEMETER_FROM])
    assert day3["1"] == pytest.approx(device_part + 100.0 * (72 - HOMEMETER_FROM))


ROOF = (1000.0, 0.0, 0.0, 0.0, 0.0)
#: homemeter counted channel 1 as a load until it took the device's configuration (pv) at hour 80.
ROLE_CHANGE = Event(START + 80 * HOUR + 60, 1, "role", "load", "pv", "Group 1", "Roof", ROOF, (0.0,) * 5)
PV_CREDIT = attribution(
    [ChannelConfig.default(0), ChannelConfig.default(1).model_copy(update={"role": Role.PV})]
)


async def import_into(data_dir: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int | None) -> None:
    """homemeter's rows, then the device's files; the `fail_at`-th write fails, then it runs again."""
    data_dir.mkdir()
    db = EnergyStore(data_dir)
    db.open()
    add, calls = archive.add, []

    def failing(conn: sqlite3.Connection, *args: Any) -> int:
        calls.append(1)
        if len(calls) == fail_at:
            raise StoreError("disk full")
        return add(conn, *args)

    try:
        await db.call(archive.ensure_schema)
        await homemeter_rows(db, events=[ROLE_CHANGE])
        if fail_at is not None:
            monkeypatch.setattr(archive, "add", failing)
            with pytest.raises(StoreError):
                await run(db, device_files(START), PV_CREDIT)
            monkeypatch.setattr(archive, "add", add)
        await run(db, device_files(START), PV_CREDIT)
    finally:
        db.close()


@pytest.mark.parametrize("fail_at", [3, 14])  # in channel 0's rows; in channel 1's (credited otherwise)
async def test_an_interrupted_import_completes_on_a_rerun_as_if_never_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """Small batches, one write fails: a re-run adds the rest and the same events, once."""
    monkeypatch.setattr(history_import, "BATCH_ROWS", 7)
    await import_into(tmp_path / "once", monkeypatch, None)
    await import_into(tmp_path / "interrupted", monkeypatch, fail_at)
    rows, events = table(tmp_path / "once" / "energy.db")
    assert table(tmp_path / "interrupted" / "energy.db") == (rows, events)
    assert len(rows) == 2 * 90 + 2
    assert sum(1 for r in rows if r[4] == RowStatus.IMPORTED) == 2 * HOMEMETER_FROM
    assert [(e[1], e[2]) for e in events] == [(1, "reset"), (0, "reset"), (1, "role"), (1, "role")]


async def test_the_device_rows_are_credited_to_the_configured_role_not_to_homemeters_earlier_one(
    store: EnergyStore,
) -> None:
    await homemeter_rows(store, events=[ROLE_CHANGE])
    await run(store, device_files(START), PV_CREDIT)
    now = {0: LiveChannel("Grid", "grid", "Group 0", 0, 0), 1: LiveChannel("Roof", "pv", "Roof", 0, 0)}
    result = await store.call(energy, hours_of(0, 80), GroupBy.ROLE, LiveState(WINDOW.end, now))
    by_role = {s.key: s.imported for s in result.series}
    assert by_role["pv"] == [e[0] for e in expected_hourly(1)[:HOMEMETER_FROM]] + [0.0] * 10
    assert by_role["load"] == [0.0] * HOMEMETER_FROM + [100.0] * 10


async def test_a_jump_beyond_the_power_limit_is_not_energy_and_a_counter_that_grew_keeps_its_hour(
    store: EnergyStore,
) -> None:
    rows = [
        "2026-03-01T00:00:00.000Z,0,1000,5000",
        "2026-03-01T01:00:00.000Z,0,1500,4000",  # exported went down, imported grew 500
        "2026-03-01T02:00:00.000Z,0,2000,4100",
        "2026-03-01T03:00:00.000Z,0,902000,4200",  # +900 kWh in an hour: set on the device
        "2026-03-01T04:00:00.000Z,0,902300,4300",
    ]
    report = await run(store, {"energy/daily/2026-03-01.csv": csv(rows)})
    assert (report.decrease_count, report.jump_count) == (1, 1)
    assert await hourly(store, 0, last=4) == [(500.0, 0.0), (500.0, 100.0), (0.0, 100.0), (300.0, 100.0)]


async def test_hours_not_closed_here_or_past_the_retention_are_left_out(store: EnergyStore) -> None:
    window = Window(START + 10 * HOUR, START + 20 * HOUR)
    report = await import_history(store, parsed(device_files(START)), CREDIT, window)
    assert report.rows_added == 2 * 10
    assert sum(c.outOfRange for c in report.folders.values()) == 2 * (HOURS - 10)


def test_files_that_are_not_the_devices_are_listed_and_legacy_files_count_as_daily() -> None:
    history = parsed({
        "energy/monthly/2026-02.csv.gz": b"\x1f\x8b not really gzip",
        "energy/yearly/2025.csv.gz": gzip.compress(b"time,power\n1,2\n"),
        "energy/2026-01-01.csv": csv(lines(START, range(3))),
        "energy/daily/notes.txt": b"hello",
    })  # fmt: skip
    assert history.skipped_files["energy/monthly/2026-02.csv.gz"].startswith("damaged gzip file")
    assert "not the device's columns" in history.skipped_files["energy/yearly/2025.csv.gz"]
    assert history.skipped_files["energy/daily/notes.txt"] == "not an energy history file"
    assert (history.folders["daily"].files, history.folders["daily"].rows) == (1, 6)


@pytest.mark.parametrize("prefix", ["", "/", "./"])
def test_the_devices_tar_is_told_by_its_layout_and_its_other_files_are_listed(prefix: str) -> None:
    src = io.BytesIO(filesystem_tar(device_files(START), prefix))
    assert is_device_archive(src) and src.tell() == 0
    history = read_device_archive(src)
    assert set(OTHER_FILES) <= set(history.skipped_files)
    assert history.row_count == 2 * (48 + 24 + 24 + 6) + 1


def test_homemeters_own_tar_is_not_the_devices(tmp_path: Path) -> None:
    (tmp_path / "files" / "energy").mkdir(parents=True)
    (tmp_path / "files" / "energy" / "notes.csv").write_text("x")
    out = io.BytesIO()
    write_archive(tmp_path, current_config(tmp_path), out)
    out.seek(0)
    assert not is_device_archive(out)
