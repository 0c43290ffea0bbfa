"""The device's `energy/` folder, generated from the archive on request (reference meter.md 6).

The device keeps today's rows in `energy/daily/YYYY-MM-DD.csv`, the finished days of this month in
`energy/monthly/YYYY-MM.csv.gz` and the finished months of every year in `energy/yearly/YYYY.csv.gz`
(all UTC). Its dashboard lists the three folders and reads those files, so homemeter offers exactly
that set, each row in exactly one file, with the device's header, `.000Z` hourly timestamps and
cumulative integer Wh. The compressed files cover closed days only: each day's lines are compressed
once into a gzip piece kept in the database (`archive.file_days`), and a file joins its days' pieces
into one gzip member (`gzip_pieces`): a year costs a few ms, after a restart too, with no row
formatted or compressed again. The ETag is a digest of the days' sizes and CRCs (the same content
gives the same ETag across restarts); files are kept in memory until a write changes the archive.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from homemeter.component import Database
from homemeter.errors import StoreError
from homemeter.store import archive
from homemeter.store.archive import DAY, FileDay, FileState
from homemeter.store.gzip_pieces import join, joined_size, piece

log = logging.getLogger(__name__)

FOLDER = "energy"
HEADER = "timestamp,channel,active_imported,active_exported"
_HEADER_PIECE = piece(f"{HEADER}\n".encode())
CACHE_FILES = 32  # generated files kept in memory (ten yearly archives are ~5 MB)
BUILD_BATCH = 31  # day pieces made per database call when catching up (~30 ms of the writer thread)
_NAME = re.compile(r"daily/\d{4}-\d{2}-\d{2}\.csv|monthly/\d{4}-\d{2}\.csv\.gz|yearly/\d{4}\.csv\.gz")


async def make_file_days(db: Database, end_day: int) -> None:
    """Make the file pieces of every changed day before `end_day`, `BUILD_BATCH` days per database
    call, so the writer thread stays free for the totals' saves in between."""
    while await db.call(archive.build_file_days, 0, end_day, BUILD_BATCH):
        pass


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


def gzip_file(days: Sequence[FileDay]) -> bytes:
    """The device's gzip file: the header, then every day's lines, from the kept pieces."""
    return join([_HEADER_PIECE, *(d.piece for d in days)])


def _digest(period: Period, days: Sequence[FileDay]) -> str:
    """The ETag: from what the file holds (each day's size and CRC), so it survives a restart and a
    piece made again with the same lines; no piece is read to check it."""
    h = hashlib.blake2b(
        repr((period, [(d.day, d.piece.size, d.piece.crc) for d in days])).encode(), digest_size=8
    )
    return f'"{h.hexdigest()}"'


def _key(name: str, period: Period, state: FileState) -> tuple[int, Period]:
    return (state.files if name.endswith(".gz") else state.rev), period


class EnergyFiles:
    """List and read the generated files; `now` is the meter clock (their dates follow it)."""

    def __init__(self, database: Database, now: Callable[[], float]) -> None:
        self._db = database
        self._now = now
        # name -> ((revision, period), file): good while neither changed; the revision is the
        # archive's for today's plain file, that of the closed days for the compressed ones
        self._cache: OrderedDict[str, tuple[tuple[int, Period], EnergyFile]] = OrderedDict()

    async def _state(self) -> tuple[FileState, dict[str, Period]]:
        """What the files depend on and the files with their periods, in one database call: a file
        in memory is served after this one hop to the writer thread."""
        state = await self._db.call(archive.file_state)
        first = state.first_hour
        year = datetime.fromtimestamp(first, UTC).year if first is not None else None
        return state, periods(self._now(), year)

    async def listing(self) -> dict[str, int]:
        """Existing files (name relative to `energy/`) -> size in bytes."""
        state, names = await self._state()
        out = {}
        for name, period in names.items():
            cached = self._cache.get(name)
            if cached is not None and cached[0] == _key(name, period, state):
                out[name] = len(cached[1].content)
            elif name.endswith(".gz"):  # the size from the pieces' lengths: nothing joined
                days = await self._db.call(archive.file_days, period.start // DAY, period.end // DAY)
                if days:
                    out[name] = joined_size([len(_HEADER_PIECE.deflate), *(d.packed for d in days)])
            elif (found := await self._file(name, period, state)) is not None:
                out[name] = len(found.content)
        return out

    async def warm(self) -> None:
        """Make the pieces of changed closed days and every file now (at start, after a day closed or
        an import), so no request waits for them."""
        try:
            await make_file_days(self._db, int(self._now() // DAY))
            state, names = await self._state()
            for name, period in names.items():
                await self._file(name, period, state)
        except StoreError as err:
            log.warning("energy files could not be generated error=%s", err)

    async def read(self, name: str) -> EnergyFile | None:
        """The file `name` (relative to `energy/`), None when the device would not have it."""
        if not _NAME.fullmatch(name):
            return None
        state, names = await self._state()
        period = names.get(name)
        return None if period is None else await self._file(name, period, state)

    async def _file(self, name: str, period: Period, state: FileState) -> EnergyFile | None:
        key = _key(name, period, state)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == key:  # nothing written since: no query at all
            self._cache.move_to_end(name)
            return cached[1]
        found = await (self._gzip(period, cached) if name.endswith(".gz") else self._daily(period))
        if found is None:
            self._cache.pop(name, None)
            return None
        self._cache[name] = (key, found)
        self._cache.move_to_end(name)
        while len(self._cache) > CACHE_FILES:
            self._cache.popitem(last=False)
        return found

    async def _gzip(self, period: Period, cached: tuple[object, EnergyFile] | None) -> EnergyFile | None:
        first, end = period.start // DAY, period.end // DAY
        if cached is not None:  # revalidated from the days' sizes and CRCs, no piece read
            days = await self._db.call(archive.file_days, first, end)
            if days and cached[1].etag == _digest(period, days):
                return cached[1]
        days = await self._db.call(archive.file_days, first, end, True)
        if not days:
            return None
        content = await asyncio.to_thread(gzip_file, days)
        return EnergyFile(content, _digest(period, days))

    async def _daily(self, period: Period) -> EnergyFile | None:
        text = await self._db.call(archive.day_text, *period)  # today: 17 channels x 24 h at most
        if not text:
            return None
        content = f"{HEADER}\n{text}\n".encode()
        return EnergyFile(content, f'"{period.start}-{len(content)}-{zlib.crc32(content):08x}"')
