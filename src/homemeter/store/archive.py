"""The hourly energy archive in `energy.db`: tables and the statements that read and write them.

Every function takes the energy database's connection and runs on its single writer thread
(`ctx.database.call(fn, ...)`), so archive writes never meet the totals saves inside SQLite.

`history_hour` holds every channel's five cumulative counters (raw, as the meter showed them) at each
UTC hour boundary: the row at hour H is the counter at the instant H, so the energy of the hour
[H, H+1h) is row(H+1h) - row(H). A reset or a role change (the meter zeroes the counters) is a row in
`history_event` with the counters just before and just after it, so sums across it stay correct.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from homemeter.errors import StoreError
from homemeter.meter.quantities import ENERGY_COLUMNS
from homemeter.store.gzip_pieces import Piece, piece

HOUR = 3600
DAY = 86_400


class RowStatus(IntEnum):
    """How an hour row came to be; the files and the query API serve all three."""

    MEASURED = 0  # written when the hour closed
    PROVISIONAL = 1  # written at a clean stop before the hour closed: the totals at that stop
    MISSED = 2  # homemeter was down at that boundary: the last saved totals, nothing measured
    IMPORTED = 3  # from the EnergyMe-Home device's files: active energy only (the others are 0)


#: (hour, channel, the five counters in ENERGY_COLUMNS order, active 0/1, status)
HourRow = tuple[float, ...]

_COLS = ", ".join(ENERGY_COLUMNS)
_BEFORE = ", ".join(f"before_{c}" for c in ENERGY_COLUMNS)
_AFTER = ", ".join(f"after_{c}" for c in ENERGY_COLUMNS)
_SCHEMA = (
    # WITHOUT ROWID: the key is the data's natural order (hour, then channel) for the CSV files.
    "CREATE TABLE IF NOT EXISTS history_hour (hour INTEGER NOT NULL, channel INTEGER NOT NULL, "
    + "".join(f"{c} REAL NOT NULL, " for c in ENERGY_COLUMNS)
    + "active INTEGER NOT NULL, status INTEGER NOT NULL, PRIMARY KEY (hour, channel)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS history_hour_channel ON history_hour (channel, hour)",
    "CREATE TABLE IF NOT EXISTS history_event (at REAL NOT NULL, channel INTEGER NOT NULL, "
    "kind TEXT NOT NULL, role_before TEXT NOT NULL, role_after TEXT NOT NULL, "
    "group_before TEXT NOT NULL, group_after TEXT NOT NULL, "
    + "".join(f"before_{c} REAL NOT NULL, " for c in ENERGY_COLUMNS)
    + "".join(f"after_{c} REAL NOT NULL, " for c in ENERGY_COLUMNS)
    + "PRIMARY KEY (at, channel))",
    # The role and group label each channel had at the last event or start: a change made while
    # homemeter was down (configuration file edited, restored) is recorded at the next start.
    "CREATE TABLE IF NOT EXISTS history_channel (channel INTEGER PRIMARY KEY, role TEXT NOT NULL, "
    "group_label TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS history_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    # Each closed UTC day's rows of the device's files as CSV lines, compressed once into a gzip
    # piece (gzip_pieces): a year's file joins 365 of them in a few ms, also right after a restart.
    # size and crc are the lines' (uncompressed), packed the piece's length.
    "CREATE TABLE IF NOT EXISTS history_file_day (day INTEGER PRIMARY KEY, size INTEGER NOT NULL, "
    "crc INTEGER NOT NULL, packed INTEGER NOT NULL, deflate BLOB NOT NULL)",
    # Days whose rows were written since their piece was made: made again before any file is read.
    "CREATE TABLE IF NOT EXISTS history_file_dirty (day INTEGER PRIMARY KEY)",
)
# history_meta key set once the pieces cover every day (databases from before them: all made again).
_FILE_DAYS_KEY = "file_days"
_INSERT_HOUR = (
    f"INSERT INTO history_hour (hour, channel, {_COLS}, active, status) "
    f"VALUES ({', '.join('?' * (len(ENERGY_COLUMNS) + 4))}) "
    # A closed hour is never rewritten; only a provisional row gives way to a later one.
    "ON CONFLICT (hour, channel) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*ENERGY_COLUMNS, "active", "status"))
    + f" WHERE history_hour.status = {RowStatus.PROVISIONAL} AND excluded.status != {RowStatus.MISSED}"
)
_ADD_HOUR = (
    f"INSERT OR IGNORE INTO history_hour (hour, channel, {_COLS}, active, status) "
    f"VALUES ({', '.join('?' * (len(ENERGY_COLUMNS) + 4))})"
)
_INSERT_EVENT = (
    "INSERT OR IGNORE INTO history_event (at, channel, kind, role_before, role_after, group_before, "
    f"group_after, {_BEFORE}, {_AFTER}) VALUES ({', '.join('?' * (7 + 2 * len(ENERGY_COLUMNS)))})"
)


@dataclass(frozen=True, slots=True)
class Event:
    """A change of a channel's counters or attribution that is not energy flowing."""

    at: float  # meter time (epoch s) of the first snapshot that showed it
    channel: int
    kind: str  # "reset" (counters went down), "set" (jumped up), "role", "group"
    role_before: str
    role_after: str
    group_before: str
    group_after: str
    before: tuple[float, ...]  # the five counters just before, ENERGY_COLUMNS order
    after: tuple[float, ...]


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the archive tables on first use (idempotent)."""
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        if any(col[1] == "rev" for col in conn.execute("PRAGMA table_info(history_hour)")):
            # Databases from before 2026-11-29 kept which write brought each row; nothing reads it.
            with conn:
                conn.execute("ALTER TABLE history_hour DROP COLUMN rev")
        if conn.execute("SELECT 1 FROM history_meta WHERE key = ?", (_FILE_DAYS_KEY,)).fetchone() is None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DROP TABLE IF EXISTS history_chunk")  # the uncompressed lines kept before
                forget_file_days(conn)
                conn.execute("INSERT INTO history_meta (key, value) VALUES (?, 1)", (_FILE_DAYS_KEY,))
    except sqlite3.Error as err:
        raise StoreError(f"cannot create the energy history tables: {err}") from err


def forget_file_days(conn: sqlite3.Connection) -> None:
    """Make every day's file piece again (history rows were written around `write` and `add`)."""
    conn.execute("DELETE FROM history_file_day")
    conn.execute(f"INSERT OR IGNORE INTO history_file_dirty SELECT DISTINCT hour / {DAY} FROM history_hour")
    _count(conn, _FILES)


def _touch(conn: sqlite3.Connection, hours: Iterable[float]) -> None:
    """The days of these hours changed: their file pieces are dropped and made again when read."""
    days = [(d,) for d in {int(h) // DAY for h in hours}]
    dropped = conn.executemany("DELETE FROM history_file_day WHERE day = ?", days).rowcount
    marked = conn.executemany("INSERT OR IGNORE INTO history_file_dirty (day) VALUES (?)", days).rowcount
    # Another hour of a day already marked (today's, every hour) changes no compressed file.
    if dropped > 0 or marked > 0:
        _count(conn, _FILES)


# history_meta counters the device's files kept in memory are checked against (`file_state`):
# unchanged, a file is served without one more query.
_WRITES = "rev"  # writes of hour rows: today's plain file
_FILES = "files"  # changes to the days of the compressed files


def _count(conn: sqlite3.Connection, key: str) -> None:
    """One more change of the history_meta counter `key`."""
    conn.execute(
        "INSERT INTO history_meta (key, value) VALUES (?, 1) "
        "ON CONFLICT (key) DO UPDATE SET value = value + 1",
        (key,),
    )


def _counter(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM history_meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def write(
    conn: sqlite3.Connection,
    rows: Sequence[HourRow],
    events: Sequence[Event] = (),
    states: Iterable[tuple[int, str, str]] = (),
) -> None:
    """Hour rows, events and channel states in one transaction: all of it survives a crash, or none."""
    states = [*states, *((e.channel, e.role_after, e.group_after) for e in events)]
    if not rows and not states:
        return
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            _count(conn, _WRITES)
            conn.executemany(_INSERT_HOUR, rows)
            _touch(conn, (r[0] for r in rows))
            conn.executemany(_INSERT_EVENT, [_event_params(e) for e in events])
            conn.executemany(
                "INSERT OR REPLACE INTO history_channel (channel, role, group_label) VALUES (?, ?, ?)", states
            )
    except sqlite3.Error as err:
        raise StoreError(f"cannot write the energy history: {err}") from err


def add(conn: sqlite3.Connection, rows: Sequence[HourRow], events: Sequence[Event]) -> int:
    """Rows for hours the archive does not have yet (any row already there wins) and their events,
    in one transaction; the number of rows added."""
    if not rows and not events:
        return 0
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            _count(conn, _WRITES)
            cur = conn.executemany(_ADD_HOUR, rows)
            added = cur.rowcount
            _touch(conn, (r[0] for r in rows))
            conn.executemany(_INSERT_EVENT, [_event_params(e) for e in events])
    except sqlite3.Error as err:
        raise StoreError(f"cannot write the energy history: {err}") from err
    return max(added, 0)


def _event_params(e: Event) -> tuple[object, ...]:
    return (e.at, e.channel, e.kind, e.role_before, e.role_after, e.group_before, e.group_after,
            *e.before, *e.after)  # fmt: skip


def last_hour(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT max(hour) FROM history_hour").fetchone()
    return None if row[0] is None else int(row[0])


def first_hour(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT min(hour) FROM history_hour").fetchone()
    return None if row[0] is None else int(row[0])


def rows_at(conn: sqlite3.Connection, hour: int) -> dict[int, tuple[float, ...]]:
    """channel -> the five counters of the row at `hour`."""
    cur = conn.execute(f"SELECT channel, {_COLS} FROM history_hour WHERE hour = ?", (hour,))
    return {int(r[0]): tuple(r[1:]) for r in cur}


def channel_rows_around(conn: sqlite3.Connection, channel: int, first: int, last: int) -> list[HourRow]:
    """(hour, the five counters, status) of a channel for first <= hour <= last, and its rows just
    outside."""
    select = f"SELECT hour, {_COLS}, status FROM history_hour WHERE channel = ? AND "
    inside = select + "hour >= ? AND hour <= ? ORDER BY hour"
    before = select + "hour < ? ORDER BY hour DESC LIMIT 1"
    after = select + "hour > ? ORDER BY hour LIMIT 1"
    return [
        *conn.execute(before, (channel, first)),
        *conn.execute(inside, (channel, first, last)),
        *conn.execute(after, (channel, last)),
    ]


def channel_event_roles(conn: sqlite3.Connection, channel: int) -> list[tuple[float, str, str]]:
    """(at, role before, group before) of a channel's events in time order: who the energy up to
    each event is credited to."""
    return conn.execute(
        "SELECT at, role_before, group_before FROM history_event WHERE channel = ? ORDER BY at", (channel,)
    ).fetchall()


def channel_states(conn: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    """channel -> (role, group label) as last recorded."""
    cur = conn.execute("SELECT channel, role, group_label FROM history_channel")
    return {int(c): (r, g) for c, r, g in cur}


def drop_future_provisional(conn: sqlite3.Connection, now: float) -> int:
    """Provisional rows of an hour that has not closed yet: it will be written when it closes."""
    with conn:
        conn.execute("BEGIN IMMEDIATE")  # the rows and their days' file pieces go together
        hours = conn.execute(
            "DELETE FROM history_hour WHERE hour > ? AND status = ? RETURNING hour",
            (now, int(RowStatus.PROVISIONAL)),
        ).fetchall()
        if hours:
            _count(conn, _WRITES)
            _touch(conn, (h for (h,) in hours))
    return len(hours)


def prune(conn: sqlite3.Connection, before: int) -> int:
    """Delete hours and events older than `before` (epoch s); the number of hour rows removed."""
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute("DELETE FROM history_hour WHERE hour < ?", (before,))
            conn.execute("DELETE FROM history_event WHERE at < ?", (before,))
            if cur.rowcount:
                conn.execute("DELETE FROM history_file_day WHERE day < ?", (before // DAY,))
                conn.execute("DELETE FROM history_file_dirty WHERE day < ?", (before // DAY,))
                _touch(conn, [before])  # the day `before` falls in lost its earlier hours
                _count(conn, _FILES)
                _count(conn, _WRITES)
    except sqlite3.Error as err:
        raise StoreError(f"cannot prune the energy history: {err}") from err
    return cur.rowcount


def clear(conn: sqlite3.Connection) -> None:
    """Remove every archived hour and event (`simulate --replace`)."""
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        for table in (
            "history_hour",
            "history_event",
            "history_channel",
            "history_file_day",
            "history_file_dirty",
        ):
            conn.execute(f"DELETE FROM {table}")  # fixed names, not input
        _count(conn, _WRITES)
        _count(conn, _FILES)


def events_between(conn: sqlite3.Connection, start: float, end: float) -> list[Event]:
    """Events with start <= at < end, in time order."""
    n = len(ENERGY_COLUMNS)
    cur = conn.execute(
        "SELECT at, channel, kind, role_before, role_after, group_before, group_after, "
        f"{_BEFORE}, {_AFTER} FROM history_event WHERE at >= ? AND at < ? ORDER BY at, channel",
        (start, end),
    )
    return [
        Event(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(r[7 : 7 + n]), tuple(r[7 + n :])) for r in cur
    ]


def active_at(conn: sqlite3.Connection, hours: Sequence[int]) -> dict[tuple[int, int], tuple[float, float]]:
    """(hour, channel) -> (active imported, active exported) for the given boundaries."""
    cur = conn.execute(
        "SELECT hour, channel, active_imported, active_exported FROM history_hour "
        "WHERE hour IN (SELECT value FROM json_each(?))",
        ("[" + ",".join(str(h) for h in hours) + "]",),
    )
    return {(int(h), int(c)): (i, e) for h, c, i, e in cur}


def active_between(conn: sqlite3.Connection, start: int, end: int) -> list[tuple[int, int, float, float]]:
    """(hour, channel, imported, exported) for start <= hour <= end, in hour order."""
    return conn.execute(
        "SELECT hour, channel, active_imported, active_exported FROM history_hour "
        "WHERE hour >= ? AND hour <= ?",
        (start, end),
    ).fetchall()


def channel_active_before(conn: sqlite3.Connection, channel: int, hour: int) -> tuple[float, float] | None:
    """The channel's active counters at its last row at or before `hour`, else its first row."""
    row = (
        conn.execute(
            "SELECT active_imported, active_exported FROM history_hour WHERE channel = ? AND hour <= ? "
            "ORDER BY hour DESC LIMIT 1",
            (channel, hour),
        ).fetchone()
        or conn.execute(
            "SELECT active_imported, active_exported FROM history_hour WHERE channel = ? "
            "ORDER BY hour LIMIT 1",
            (channel,),
        ).fetchone()
    )
    return None if row is None else (float(row[0]), float(row[1]))


# The device logs a row only for active channels past 100 Wh either way (reference meter.md 6).
_FILE_ROWS = (
    "FROM history_hour WHERE hour >= ? AND hour < ? AND active = 1 "
    "AND (active_imported > 100 OR active_exported > 100)"
)


class FileState(NamedTuple):
    """What the device's files kept in memory are checked against."""

    rev: int  # hour rows written (today's plain file)
    files: int  # changes to the days of the compressed files
    first_hour: int | None


def file_state(conn: sqlite3.Connection) -> FileState:
    return FileState(_counter(conn, _WRITES), _counter(conn, _FILES), first_hour(conn))


class FileDay(NamedTuple):
    day: int  # UTC day number (epoch s // 86400)
    packed: int  # compressed bytes of its piece
    piece: Piece  # its deflate is empty unless asked for


def build_file_days(conn: sqlite3.Connection, first: int, end: int, limit: int = -1) -> int:
    """Make the file pieces of the changed days in [first, end) (at most `limit`); how many were made.

    A day's lines are formatted by SQLite (`group_concat` in key order, no Python object per row) and
    compressed once; the days of the device's files are closed, so a piece is made once per day.
    """
    cur = conn.execute(
        "SELECT day FROM history_file_dirty WHERE day >= ? AND day < ? ORDER BY day LIMIT ?",
        (first, end, limit),
    )
    days = [int(d) for (d,) in cur]
    if not days:
        return 0
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            for day in days:
                text = day_text(conn, day * DAY, (day + 1) * DAY)
                if text:
                    made = piece(f"{text}\n".encode())
                    conn.execute(
                        "INSERT OR REPLACE INTO history_file_day VALUES (?, ?, ?, ?, ?)",
                        (day, made.size, made.crc, len(made.deflate), made.deflate),
                    )
                conn.execute("DELETE FROM history_file_dirty WHERE day = ?", (day,))
    except sqlite3.Error as err:
        raise StoreError(f"cannot keep the energy file rows: {err}") from err
    return len(days)


def file_days(conn: sqlite3.Connection, first: int, end: int, content: bool = False) -> list[FileDay]:
    """The file pieces of the days in [first, end) that have rows, made first where changed."""
    build_file_days(conn, first, end)
    deflate = "deflate" if content else "x''"  # a fixed choice of column, not input
    cur = conn.execute(
        f"SELECT day, size, crc, packed, {deflate} FROM history_file_day "
        "WHERE day >= ? AND day < ? ORDER BY day",
        (first, end),
    )
    return [FileDay(day, packed, Piece(size, crc, data)) for day, size, crc, packed, data in cur]


def day_text(conn: sqlite3.Connection, start: int, end: int) -> str:
    """The device's CSV lines (no header, no final newline) of the hours in [start, end)."""
    row = conn.execute(
        "SELECT group_concat(line, char(10)) FROM (SELECT "
        "strftime('%Y-%m-%dT%H:%M:%S.000Z', hour, 'unixepoch') || ',' || channel || ',' || "
        "CAST(round(active_imported) AS INTEGER) || ',' || CAST(round(active_exported) AS INTEGER) AS line "
        f"{_FILE_ROWS} ORDER BY hour, channel)",
        (start, end),
    ).fetchone()
    return row[0] or ""
