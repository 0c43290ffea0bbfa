"""Store and forward: every point waits on disk until the server has taken it.

The device drops a POST's points when it fails (reference integrations.md 3.4, 6.2.1). Here each upload
interval's lines are committed to their own SQLite file (`influxdb-queue.db` in the data directory,
WAL, `synchronous=FULL`) before any attempt, and deleted only after a 2xx: they survive a restart, a
`kill -9` and a power cut. A batch whose answer was lost (killed between the server's 204 and the
delete) is written again on the next attempt; InfluxDB overwrites a point with the same series and
time, so that retry changes nothing.

One row per upload interval, its lines zlib-compressed (line protocol shrinks about 8x: a week at 1 s
for 17 channels is some 500 MB instead of 4 GB). The queue is bounded by the reading time of its
points: rows older than `max_age` before the newest are dropped, oldest first, and counted.

Not thread-safe: the writer uses it from one thread of its own (every commit waits for fsync).
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from homemeter.errors import StoreError

log = logging.getLogger(__name__)

QUEUE_FILE = "influxdb-queue.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a batch is a range of ids
    time_ns INTEGER NOT NULL,              -- meter time of the interval (its readings are older)
    points INTEGER NOT NULL,               -- lines in body
    body BLOB NOT NULL                     -- zlib of the lines joined by newlines
);
CREATE INDEX IF NOT EXISTS points_time ON points (time_ns);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class QueueError(StoreError):
    """The queue file cannot be written (disk full, permissions): the points of that call are lost."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive rows to POST as one body; `first`..`last` is their id range."""

    first: int
    last: int
    rows: int
    points: int
    body: bytes  # the lines joined by newlines, no trailing newline (as the device sends)
    live: bool  # pushed since the previous take


class PointQueue:
    """Points not yet written, in reading order; `take` prefers rows pushed since the last take."""

    def __init__(self, path: Path, max_age_s: float) -> None:
        self.path = path
        self.max_age_ns = int(max_age_s * 1e9)
        self._db = _open(path)
        # Rows up to the mark were there before the last take (backlog); later ones are live.
        self._live_mark = self._scalar("SELECT COALESCE(MAX(id), 0) FROM points")
        self.points = self._scalar("SELECT COALESCE(SUM(points), 0) FROM points")
        self.dropped = self._scalar("SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'dropped'")
        self.oldest_ns: int | None = None
        self._refresh_oldest()

    def close(self) -> None:
        self._db.close()

    def _scalar(self, sql: str, *args: object) -> int:
        return int(self._db.execute(sql, args).fetchone()[0])

    def _refresh_oldest(self) -> None:
        row = self._db.execute("SELECT MIN(time_ns) FROM points").fetchone()
        self.oldest_ns = None if row[0] is None else int(row[0])

    def push(self, time_ns: int, lines: Sequence[str]) -> int:
        """Commit one interval's lines (durable on return); the number of old points dropped."""
        body = zlib.compress("\n".join(lines).encode(), 6)
        cutoff = time_ns - self.max_age_ns
        try:
            with self._db:
                dropped = self._scalar(
                    "SELECT COALESCE(SUM(points), 0) FROM points WHERE time_ns < ?", cutoff
                )
                if dropped:
                    self._db.execute("DELETE FROM points WHERE time_ns < ?", (cutoff,))
                    self._db.execute(
                        "INSERT INTO counters VALUES ('dropped', ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                        (dropped,),
                    )
                self._db.execute(
                    "INSERT INTO points (time_ns, points, body) VALUES (?, ?, ?)", (time_ns, len(lines), body)
                )
        except sqlite3.Error as err:
            raise QueueError(f"cannot queue {len(lines)} points in {self.path}: {err}") from err
        self.points += len(lines) - dropped
        self.dropped += dropped
        if dropped or self.oldest_ns is None or time_ns < self.oldest_ns:
            self._refresh_oldest()
        return dropped

    def take(
        self, live_points: int, backlog_points: int, live_first: bool = True, rewind: bool = False
    ) -> Batch | None:
        """The next batch: rows pushed since the previous take (live) or older ones (backlog).

        At least one row; more while the total stays within the limit of its kind. The writer
        alternates the two, so live points wait behind at most one backlog batch while the backlog
        goes out in reading order. After a failed attempt it rewinds: every row waiting becomes
        backlog, and the retry starts with the oldest.
        """
        if rewind:
            self._live_mark = self._scalar("SELECT COALESCE(MAX(id), 0) FROM points")
        kinds = ((True, live_points), (False, backlog_points))
        for live, limit in kinds if live_first else reversed(kinds):
            batch = self._rows("WHERE id > ?" if live else "WHERE id <= ?", limit, live)
            if batch is not None:
                if live:
                    self._live_mark = batch.last
                return batch
        return None

    def _rows(self, where: str, max_points: int, live: bool) -> Batch | None:
        cursor = self._db.execute(
            f"SELECT id, points, body FROM points {where} ORDER BY id", (self._live_mark,)
        )
        ids: list[int] = []
        bodies: list[bytes] = []
        points = 0
        for row_id, n, body in cursor:
            if ids and points + n > max_points:
                break
            ids.append(row_id)
            bodies.append(zlib.decompress(body))
            points += n
        cursor.close()
        if not ids:
            return None
        return Batch(ids[0], ids[-1], len(ids), points, b"\n".join(bodies), live)

    def remove(self, batch: Batch) -> int:
        """Forget a batch the server took (or refused for good); the points actually removed."""
        span = (batch.first, batch.last)
        try:
            with self._db:
                gone = self._scalar(
                    "SELECT COALESCE(SUM(points), 0) FROM points WHERE id BETWEEN ? AND ?", *span
                )
                self._db.execute("DELETE FROM points WHERE id BETWEEN ? AND ?", span)
        except sqlite3.Error as err:
            raise QueueError(f"cannot remove written points from {self.path}: {err}") from err
        self.points -= gone
        self._refresh_oldest()
        return gone


def _open(path: Path) -> sqlite3.Connection:
    """Open (or create) the queue; a damaged file is moved aside and a new one started."""
    try:
        return _connect(path)
    except sqlite3.OperationalError as err:  # cannot open or write at all: nothing to recover
        raise QueueError(f"cannot open {path}: {err}") from err
    except sqlite3.DatabaseError as err:  # not a database, or malformed
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        log.error("influxdb queue unreadable, moved aside path=%s to=%s error=%s", path, aside, err)
        try:
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            return _connect(path)
        except (OSError, sqlite3.Error) as again:
            raise QueueError(f"cannot replace the damaged {path}: {again}") from again


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")  # a committed push survives a power cut
        db.executescript(_SCHEMA)
        db.execute("SELECT COUNT(*) FROM points").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    db.isolation_level = "DEFERRED"  # `with db:` opens and commits a transaction
    return db
