"""The device's energy files generated from the archive: which exist when, their exact format, ETags."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import re
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
