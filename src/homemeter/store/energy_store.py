"""Energy totals on disk: SQLite in WAL mode, fsync'd on every save, with a verified backup copy.

`EnergyStore` is the one owner of the database: every access (periodic and signalled saves, the
history archive) runs on its single writer thread under one lock, so concurrent saves never meet
inside SQLite ("cannot start a transaction within a transaction").

After `kill -9` or a power cut the totals restart from the last committed save: never lower than
that, never reset. With remote meters as the source, the counters those totals include (the
`counter_baselines` table) are written in the same transaction, so a restart credits exactly what
the meters counted since: never twice, never lost. A damaged database is detected at start
(integrity check), moved aside and replaced by the last good copy, which is refreshed after saves
that passed a quick check.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from homemeter.errors import StoreCorrupted, StoreError
from homemeter.meter.quantities import ENERGY_COLUMNS
from homemeter.meter.snapshot import EnergyTotals
from homemeter.meter.source import CounterBaseline

log = logging.getLogger(__name__)

T = TypeVar("T")

# Columns from the quantity table, in EnergyTotals order (active/reactive imported/exported, apparent).
_COLUMNS = ", ".join(ENERGY_COLUMNS)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS energy (channel INTEGER PRIMARY KEY, "
    + "".join(f"{c} REAL NOT NULL, " for c in ENERGY_COLUMNS)
    + "saved_at REAL NOT NULL)"
)
_UPSERT = (
    f"INSERT INTO energy (channel, {_COLUMNS}, saved_at) "
    f"VALUES ({', '.join('?' * (len(ENERGY_COLUMNS) + 2))}) "
    "ON CONFLICT(channel) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*ENERGY_COLUMNS, "saved_at"))
)
_BASELINE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS counter_baselines (channel INTEGER PRIMARY KEY, source TEXT NOT NULL, "
    "url TEXT NOT NULL, source_channel INTEGER NOT NULL, "
    + "".join(f"{c} REAL, " for c in ENERGY_COLUMNS)
    + "read_at REAL NOT NULL)"
)
_BASELINE_INSERT = (
    f"INSERT INTO counter_baselines (channel, source, url, source_channel, {_COLUMNS}, read_at) "
    f"VALUES ({', '.join('?' * (len(ENERGY_COLUMNS) + 5))})"
)
BACKUP_EVERY = 6  # saves: with the default 10 s interval the good copy is at most a minute old


class EnergyStore:
    """One SQLite file `energy.db` (+ `energy.db.bak`, the last good copy) in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "energy.db"
        self.backup_path = data_dir / "energy.db.bak"
        self._conn: sqlite3.Connection | None = None
        self._saves = 0
        self.recovered_from: str | None = None  # the damaged file's new name, after a recovery
        self._lock = threading.RLock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="energy-db")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` on the writer thread, serialised with every other access."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._with_lock, fn, args)

    async def save_totals(
        self, totals: Mapping[int, EnergyTotals], baselines: Sequence[CounterBaseline] | None = None
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(self._writer, self.save, totals, baselines)

    def _with_lock(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._lock:
            return fn(self._require(), *args)

    def open(self) -> dict[int, EnergyTotals]:
        """Open (recovering a damaged file from the good copy) and return the stored totals."""
        if self.path.exists() and not _healthy(self.path):
            self._recover()
        try:
            self._conn = self._connect(self.path)
            totals = self._read(self._conn)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open energy database {self.path}: {err}") from err
        if not self.backup_path.exists():
            self._write_backup()
        return totals

    def _recover(self) -> None:
        aside = self.path.with_name(f"energy.db.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, f"{aside}{suffix}")
        if not (self.backup_path.exists() and _healthy(self.backup_path)):
            raise StoreCorrupted(
                f"energy database {self.path} is damaged (moved to {aside.name}) and no good copy "
                f"exists at {self.backup_path.name}; restore one from a backup, or remove the "
                "damaged file to start counting from zero"
            )
        shutil.copyfile(self.backup_path, self.path)
        self.recovered_from = aside.name
        log.error(
            "energy database damaged, recovered from last good copy damaged=%s copy=%s",
            aside.name,
            self.backup_path.name,
        )

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # survive a power cut, not only a crash
        conn.execute(_SCHEMA)
        conn.execute(_BASELINE_SCHEMA)
        return conn

    @staticmethod
    def _read(conn: sqlite3.Connection) -> dict[int, EnergyTotals]:
        rows = conn.execute(f"SELECT channel, {_COLUMNS} FROM energy").fetchall()
        return {int(r[0]): EnergyTotals(*(max(0.0, float(x)) for x in r[1:])) for r in rows}

    def save(
        self, totals: Mapping[int, EnergyTotals], baselines: Sequence[CounterBaseline] | None = None
    ) -> None:
        """Write every channel's totals in one committed transaction.

        `baselines` (the remote counters these totals include) replace the stored ones in the same
        transaction; None leaves them alone (a source without remote counters).
        """
        with self._lock:
            now = time.time()
            with self._transaction(f"cannot save energy totals to {self.path}") as conn:
                rows = [(ch, *t.as_tuple(), now) for ch, t in sorted(totals.items())]
                conn.executemany(_UPSERT, rows)
                if baselines is not None:
                    conn.execute("DELETE FROM counter_baselines")
                    conn.executemany(_BASELINE_INSERT, map(_baseline_row, baselines))
            self._saves += 1
            if self._saves % BACKUP_EVERY == 0:
                self._write_backup()

    def forget_baselines(self, channels: Iterable[int]) -> None:
        """Totals set from elsewhere (an import) no longer include these channels' remote counters."""
        with self._transaction(f"cannot update {self.path}") as conn:
            conn.executemany("DELETE FROM counter_baselines WHERE channel = ?", [(c,) for c in channels])

    @contextmanager
    def _transaction(self, failure: str) -> Iterator[sqlite3.Connection]:
        """One committed write transaction under the lock; `StoreError(failure: why)` if SQLite fails."""
        with self._lock:
            conn = self._require()
            try:
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    yield conn
            except sqlite3.Error as err:
                raise StoreError(f"{failure}: {err}") from err

    def _write_backup(self) -> None:
        """Copy the live database to `.bak` atomically, only if it passes a quick check."""
        conn = self._require()
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            log.error("energy database failed its quick check; keeping the previous good copy")
            return
        tmp = self.backup_path.with_suffix(".bak.tmp")
        try:
            dst = sqlite3.connect(tmp)
            with dst:
                conn.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.close()
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.backup_path)
        except (sqlite3.Error, OSError) as err:
            tmp.unlink(missing_ok=True)  # a half-written copy would only take space (disk full)
            log.warning("could not refresh energy backup copy error=%s", err)

    def close(self) -> None:
        """Refresh the good copy (a clean stop leaves both files equal) and close."""
        with self._lock:
            if self._conn is not None:
                self._write_backup()
                self._conn.close()
                self._conn = None
        self._writer.shutdown(wait=True)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("energy store is not open")
        return self._conn


def _baseline_row(b: CounterBaseline) -> tuple[object, ...]:
    return (b.channel, b.source, b.url, b.source_channel, *b.counters, b.read_at)


def read_baselines(conn: sqlite3.Connection) -> tuple[CounterBaseline, ...]:
    """The stored baselines (run with `Database.call`)."""
    rows = conn.execute(
        f"SELECT channel, source, url, source_channel, {_COLUMNS}, read_at FROM counter_baselines"
    ).fetchall()
    return tuple(
        CounterBaseline(int(r[0]), str(r[1]), str(r[2]), int(r[3]), tuple(r[4:-1]), float(r[-1]))
        for r in rows
    )


def _healthy(path: Path) -> bool:
    """A file SQLite can open whose integrity check passes."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()
            conn.execute("SELECT count(*) FROM energy").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return bool(result) and result[0] == "ok"
