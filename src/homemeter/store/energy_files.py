"""The device's `energy/` folder, generated from the archive on request (reference meter.md 6).

The device keeps today's rows in `energy/daily/YYYY-MM-DD.csv`, the finished days of this month in
`energy/monthly/YYYY-MM.csv.gz` and the finished months of every year in `energy/yearly/YYYY.csv.gz`
(all UTC). Its dashboard lists the three folders and reads those files, so homemeter offers exactly
that set, each row in exactly one file, with the device's header, `.000Z` hourly timestamps and
cumulative integer Wh. A file is built from `history_hour` on request, joining the CSV lines of
each UTC day, which are made once and kept (`history_chunk`): a year's file costs ~20 ms of joining
and gzip instead of ~200 ms of formatting 150,000 rows. Its ETag (rows and newest write of its
period) comes from one grouped query; files are kept in memory until a write changes the archive.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from homemeter.component import Database
from homemeter.errors import StoreError
from homemeter.store import archive

log = logging.getLogger(__name__)

FOLDER = "energy"
HEADER = "timestamp,channel,active_imported,active_exported"
# gzip level 1: a year (150,000 rows, 5 MB of CSV) compresses in ~15 ms to ~450 KB; level 6 takes
# ~100 ms for ~300 KB, which alone would break the 100 ms budget of a year's file.
GZIP_LEVEL = 1
CACHE_FILES = 32  # generated files kept in memory (ten yearly archives are ~5 MB)
_NAME = re.compile(r"daily/\d{4}-\d{2}-\d{2}\.csv|monthly/\d{4}-\d{2}\.csv\.gz|yearly/\d{4}\.csv\.gz")


class Period(NamedTuple):
    start: int  # epoch s, inclusive
    end: int  # exclusive


class EnergyFile(NamedTuple):
    content: bytes
    etag: str


def _epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def periods(now: float, first_year: int | None) -> dict[str, Period]:
    """Every file name (relative to `energy/`) the device would hold at `now`, and its hours."""
    today = datetime.fromtimestamp(now, UTC).date()
    month = today.replace(day=1)
    names = {f"daily/{today.isoformat()}.csv": Period(_epoch(today), _epoch(today + timedelta(days=1)))}
    if today.day > 1:
        names[f"monthly/{month:%Y-%m}.csv.gz"] = Period(_epoch(month), _epoch(today))
    for year in range(first_year or today.year, today.year + 1):
        start, end = date(year, 1, 1), min(date(year + 1, 1, 1), month)
        if end > start:
            names[f"yearly/{year}.csv.gz"] = Period(_epoch(start), _epoch(end))
    return names


def render(rows: str, compressed: bool) -> bytes:
    body = f"{HEADER}\n{rows}\n".encode() if rows else f"{HEADER}\n".encode()
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if compressed else body


class EnergyFiles:
    """List and read the generated files; `now` is the meter clock (their dates follow it)."""

    def __init__(self, database: Database, now: Callable[[], float]) -> None:
        self._db = database
        self._now = now
        self._cache: OrderedDict[str, tuple[int, EnergyFile]] = OrderedDict()  # name -> (rev, file)

    async def _periods(self) -> dict[str, Period]:
        first = await self._db.call(archive.first_hour)
        year = datetime.fromtimestamp(first, UTC).year if first is not None else None
        return periods(self._now(), year)

    async def listing(self) -> dict[str, int]:
        """Existing files (name relative to `energy/`) -> size in bytes."""
        out = {}
        for name, period in (await self._periods()).items():
            found = await self._file(name, period)
            if found is not None:
                out[name] = len(found.content)
        return out

    async def warm(self) -> None:
        """Generate every file now (after a day or month closed), so no request waits for it."""
        try:
            await self.listing()
        except StoreError as err:
            log.warning("energy files could not be generated error=%s", err)

    async def read(self, name: str) -> EnergyFile | None:
        """The file `name` (relative to `energy/`), None when the device would not have it."""
        if not _NAME.fullmatch(name):
            return None
        period = (await self._periods()).get(name)
        return None if period is None else await self._file(name, period)

    async def _file(self, name: str, period: Period) -> EnergyFile | None:
        rev = await self._db.call(archive.revision)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == rev:  # nothing written since: no query at all
            self._cache.move_to_end(name)
            return cached[1]
        versions = await self._db.call(archive.file_versions, *period)
        if not versions:
            self._cache.pop(name, None)
            return None
        rows = sum(n for n, _ in versions.values())
        etag = f'"{period.start}-{rows}-{max(r for _, r in versions.values())}"'
        if cached is None or cached[1].etag != etag:
            text = await self._db.call(archive.file_text, *period, versions)
            content = await asyncio.to_thread(render, text, name.endswith(".gz"))
            cached = (rev, EnergyFile(content, etag))
        self._cache[name] = (rev, cached[1])
        self._cache.move_to_end(name)
        while len(self._cache) > CACHE_FILES:
            self._cache.popitem(last=False)
        return cached[1]
