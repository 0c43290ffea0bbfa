"""The device's energy files generated from the archive: which exist when, their exact format, ETags."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from homemeter.store import archive
from homemeter.store.archive import HOUR, RowStatus
from homemeter.store.energy_files import HEADER, EnergyFiles, periods
from homemeter.store.energy_store import EnergyStore

ROW = re.compile(r"\d{4}-\d\d-\d\dT\d\d:00:00\.000Z,\d+,\d+,\d+")


def epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_the_device_set_of_files_for_a_date() -> None:
    names = periods(epoch(2026, 3, 15, 10), 2024)
    assert set(names) == {"daily/2026-03-15.csv", "monthly/2026-03.csv.gz", "yearly/2024.csv.gz",
                          "yearly/2025.csv.gz", "yearly/2026.csv.gz"}  # fmt: skip
    assert names["monthly/2026-03.csv.gz"] == (epoch(2026, 3, 1), epoch(2026, 3, 15))
    assert names["yearly/2026.csv.gz"] == (epoch(2026, 1, 1), epoch(2026, 3, 1))
    # On the 1st nothing of this month is finished; in January this year has no finished month.
    assert set(periods(epoch(2026, 1, 1, 5), 2025)) == {"daily/2026-01-01.csv", "yearly/2025.csv.gz"}


async def test_files_hold_each_row_once_in_the_device_format_and_revalidate_by_etag(tmp_path: Path) -> None:
    store = EnergyStore(tmp_path)
    store.open()
    now = epoch(2026, 3, 2, 5, 30)
    start = epoch(2026, 2, 27)
    rows = [(h, c, 90.0 + (h - start) / HOUR * 10.5 * (c + 1), 0.25, 0.0, 0.0, 0.0, int(c != 2), 0)
            for h in range(start, epoch(2026, 3, 2, 5) + 1, HOUR) for c in range(3)]  # fmt: skip
    await store.call(archive.ensure_schema)
    await store.call(archive.write, rows)
    files = EnergyFiles(store, lambda: now)
    listing = await files.listing()
    assert set(listing) == {"daily/2026-03-02.csv", "monthly/2026-03.csv.gz", "yearly/2026.csv.gz"}
    seen: list[tuple[str, str]] = []
    for name, size in listing.items():
        found = await files.read(name)
        assert found is not None and len(found.content) == size
        text = (gzip.decompress(found.content) if name.endswith(".gz") else found.content).decode()
        lines = text.splitlines()
        assert lines[0] == HEADER and all(ROW.fullmatch(line) for line in lines[1:])
        seen += [(r["timestamp"], r["channel"]) for r in csv.DictReader(io.StringIO(text))]
    assert len(seen) == len(set(seen)), "each row in exactly one file"
    # Inactive channel 2 and counters still at or under 100 Wh are left out, as on the device.
    assert {c for _, c in seen} == {"0", "1"}
    assert ("2026-02-27T00:00:00.000Z", "0") not in seen and ("2026-02-27T01:00:00.000Z", "0") in seen
    daily = await files.read("daily/2026-03-02.csv")
    assert daily is not None
    # 72 h after the start: 90 + 72 x 10.5 = 846 Wh imported, 0.25 Wh exported printed as 0.
    assert daily.content.decode().splitlines()[1] == "2026-03-02T00:00:00.000Z,0,846,0"
    # Nothing written since: same ETag; the next hour changes today's file only.
    monthly = await files.read("monthly/2026-03.csv.gz")
    await store.call(
        archive.write, [(epoch(2026, 3, 2, 6), 0, 5000.0, 0.0, 0, 0, 0, 1, int(RowStatus.MEASURED))]
    )
    assert (await files.read("daily/2026-03-02.csv")).etag != daily.etag  # type: ignore[union-attr]
    assert (await files.read("monthly/2026-03.csv.gz")) == monthly
    assert await files.read("daily/2026-03-01.csv") is None  # finished days live in the monthly file
    assert await files.read("weekly/2026-10.csv") is None
    await asyncio.to_thread(store.close)


# The files as the previous implementation made them (one query over the period, compressed whole):
# the content clients parse must stay byte for byte the same.
REFERENCE = (
    "SELECT group_concat(line, char(10)) FROM (SELECT "
    "strftime('%Y-%m-%dT%H:%M:%S.000Z', hour, 'unixepoch') || ',' || channel || ',' || "
    "CAST(round(active_imported) AS INTEGER) || ',' || CAST(round(active_exported) AS INTEGER) AS line "
    "FROM history_hour WHERE hour >= ? AND hour < ? AND active = 1 "
    "AND (active_imported > 100 OR active_exported > 100) ORDER BY hour, channel)"
)


def reference(db: Path, start: int, end: int) -> bytes | None:
    conn = sqlite3.connect(db)
    try:
        (rows,) = conn.execute(REFERENCE, (start, end)).fetchone()
    finally:
        conn.close()
    return None if rows is None else f"{HEADER}\n{rows}\n".encode()


def history(start: int, end: int, channels: int = 17) -> list[tuple[float, ...]]:
    """Hourly rows with fractional counters (rounding), an inactive channel and counters under 100 Wh."""
    origin = epoch(2025, 12, 1)  # the counters grow from here, whatever the rows written
    return [(h, c, (h - origin) / HOUR * (0.5 + c * 37.25), (h - origin) / HOUR * 0.5 * (c % 3),
             0.0, 0.0, 0.0, int(c != 4), int(RowStatus.MEASURED))
            for h in range(start, end, HOUR) for c in range(channels)]  # fmt: skip


async def opened(tmp_path: Path) -> EnergyStore:
    store = EnergyStore(tmp_path)
    store.open()
    await store.call(archive.ensure_schema)
    return store


async def assert_as_before(files: EnergyFiles, db: Path, now: float) -> dict[str, str]:
    """Every listed file decompresses to the previous implementation's content; name -> ETag."""
    etags = {}
    listing = await files.listing()
    for name, period in periods(now, 2025).items():
        found = await files.read(name)
        expected = reference(db, *period)
        if expected is None:
            assert found is None and name not in listing, name
            continue
        assert found is not None and listing[name] == len(found.content), name
        content = gzip.decompress(found.content) if name.endswith(".gz") else found.content
        assert content == expected, name
        etags[name] = found.etag
    return etags


async def test_content_is_the_previous_implementations_and_survives_a_restart(tmp_path: Path) -> None:
    now = epoch(2026, 3, 3, 7, 30)
    store = await opened(tmp_path)
    await store.call(archive.write, history(epoch(2025, 12, 1), epoch(2026, 3, 3, 8)))
    files = EnergyFiles(store, lambda: now)
    await files.warm()
    etags = await assert_as_before(files, store.path, now)
    assert set(etags) == {"daily/2026-03-03.csv", "monthly/2026-03.csv.gz", "yearly/2025.csv.gz",
                          "yearly/2026.csv.gz"}  # fmt: skip
    await asyncio.to_thread(store.close)
    # A restart: nothing in memory, every closed day's piece still in the database, same ETags.
    store = await opened(tmp_path)
    assert await store.call(archive.build_file_days, 0, int(now) // 86_400) == 0  # today stays open
    assert await assert_as_before(EnergyFiles(store, lambda: now), store.path, now) == etags
    await asyncio.to_thread(store.close)


async def test_a_change_to_the_history_changes_the_files_that_hold_it(tmp_path: Path) -> None:
    clock = [epoch(2026, 3, 3, 7, 30)]
    store = await opened(tmp_path)
    await store.call(archive.write, history(epoch(2026, 1, 10), epoch(2026, 3, 3, 8), channels=3))
    files = EnergyFiles(store, lambda: clock[0])
    before = await assert_as_before(files, store.path, clock[0])
    # The device's files imported: rows of another channel in a closed day of the yearly file.
    added = [(h, 9, 5005.0, 200.0, 0.0, 0.0, 0.0, 1, int(RowStatus.IMPORTED))
             for h in range(epoch(2026, 2, 14), epoch(2026, 2, 15), HOUR)]  # fmt: skip
    assert await store.call(archive.add, added, []) == 24
    after = await assert_as_before(files, store.path, clock[0])
    assert after["yearly/2026.csv.gz"] != before["yearly/2026.csv.gz"]
    assert after["monthly/2026-03.csv.gz"] == before["monthly/2026-03.csv.gz"]
    yearly = await files.read("yearly/2026.csv.gz")
    assert yearly is not None and b"2026-02-14T05:00:00.000Z,9,5005,200" in gzip.decompress(yearly.content)
    # Into a day that had no rows at all (no piece to drop): the file in memory is not served again.
    early = [(epoch(2026, 1, 5, 3), 9, 4000.0, 0.0, 0.0, 0.0, 0.0, 1, int(RowStatus.IMPORTED))]
    assert await store.call(archive.add, early, []) == 1
    after = await assert_as_before(files, store.path, clock[0])
    yearly = await files.read("yearly/2026.csv.gz")
    assert yearly is not None and b"2026-01-05T03:00:00.000Z,9,4000,0\n" in gzip.decompress(yearly.content)
    # A day closes: the monthly file gains it, today's file starts again.
    await store.call(archive.write, history(epoch(2026, 3, 3, 8), epoch(2026, 3, 4, 1), channels=3))
    clock[0] = epoch(2026, 3, 4, 0, 30)
    closed = await assert_as_before(files, store.path, clock[0])
    assert closed["monthly/2026-03.csv.gz"] != after["monthly/2026-03.csv.gz"]
    monthly = await files.read("monthly/2026-03.csv.gz")
    assert monthly is not None and b"2026-03-03T23:00:00.000Z,0," in gzip.decompress(monthly.content)
    await store.call(archive.prune, epoch(2026, 2, 1, 5))  # older hours go, the cut day is made again
    pruned = await assert_as_before(files, store.path, clock[0])
    assert pruned["yearly/2026.csv.gz"] != closed["yearly/2026.csv.gz"]
    # simulate --replace: everything goes.
    await store.call(archive.clear)
    assert await files.listing() == {}
    assert await files.read("yearly/2026.csv.gz") is None
    await asyncio.to_thread(store.close)


async def test_a_database_from_before_the_pieces_gets_them_all(tmp_path: Path) -> None:
    now = epoch(2026, 2, 10, 3)
    store = await opened(tmp_path)
    await store.call(archive.write, history(epoch(2026, 1, 1), epoch(2026, 2, 10, 4), channels=2))

    def downgrade(conn: sqlite3.Connection) -> None:  # as the previous version left it
        conn.execute("DELETE FROM history_file_day")
        conn.execute("DELETE FROM history_file_dirty")
        conn.execute("DELETE FROM history_meta WHERE key = 'file_days'")
        conn.execute("CREATE TABLE history_chunk (day INTEGER PRIMARY KEY, version TEXT, text TEXT)")

    await store.call(downgrade)
    await asyncio.to_thread(store.close)
    store = await opened(tmp_path)
    tables = await store.call(lambda c: {n for (n,) in c.execute("SELECT name FROM sqlite_master")})
    assert "history_chunk" not in tables
    await assert_as_before(EnergyFiles(store, lambda: now), store.path, now)
    await asyncio.to_thread(store.close)
