"""What the stores hold, read from outside: the history archive, the InfluxDB queue, influxd.

The load and the kill -9 cycles judge the history archive (no hole, no duplicate hour) and the
InfluxDB queue (nothing lost on the way to influxd) with these, straight from the files and the
server, not through homemeter's own API. `faketime_env` lets a restarted service's clock go on from
where the killed one stopped (under `--speed` the meter clock starts at the wall clock each time).
"""

from __future__ import annotations

import glob
import re
import sqlite3
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from homemeter.integrations.influxdb.queue import QUEUE_FILE
from homemeter.store.archive import HOUR, RowStatus
from tests.influxd import Influxd

#: (channel, reading time in ns): one InfluxDB point (its instant and energy lines share both).
Point = tuple[str, int]

_CHANNEL = re.compile(r",channel=(\d+),")


@dataclass(frozen=True)
class Archive:
    hours: int  # boundaries from the first to the last archived hour
    channels: int
    holes: int  # (hour, channel) missing between the first and the last hour
    duplicates: int  # (hour, channel) stored more than once, or hours off the hour
    missed: int  # hours filled at a start after homemeter was down there (status MISSED)

    @property
    def consistent(self) -> bool:
        return self.hours > 0 and self.holes == 0 and self.duplicates == 0

    @property
    def figures(self) -> str:
        return (
            f"{self.hours} hours x {self.channels} channels archived ({self.missed} filled as missed "
            f"while down), {self.holes} holes, {self.duplicates} duplicates"
        )


def archive(data_dir: Path) -> Archive:
    """Every channel once at every hour boundary from the first to the last one archived?"""
    conn = sqlite3.connect(f"file:{data_dir / 'energy.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT hour, channel, status FROM history_hour").fetchall()
    finally:
        conn.close()
    if not rows:
        return Archive(0, 0, 0, 0, 0)
    seen = Counter((int(h), int(c)) for h, c, _ in rows)
    hours = sorted({h for h, _ in seen})
    channels = sorted({c for _, c in seen})
    span = range(hours[0], hours[-1] + HOUR, HOUR)
    holes = sum((h, c) not in seen for h in span for c in channels)
    duplicates = sum(n - 1 for n in seen.values()) + sum(h % HOUR != 0 for h in hours)
    missed = len({h for h, _, status in rows if status == RowStatus.MISSED})
    return Archive(len(span), len(channels), holes, duplicates, missed)


def queued_points(data_dir: Path) -> set[Point]:
    """The points waiting in the InfluxDB queue file (as a restart finds it)."""
    path = data_dir / QUEUE_FILE
    if not path.exists():
        return set()
    conn = sqlite3.connect(path)  # read-write: a WAL left by a kill is read, as a restart would
    try:
        bodies = [zlib.decompress(b).decode() for (b,) in conn.execute("SELECT body FROM points")]
    finally:
        conn.close()
    return {_point(line) for body in bodies for line in body.splitlines()}


def _point(line: str) -> Point:
    match = _CHANNEL.search(line)
    assert match is not None, line
    return match.group(1), int(line.rsplit(" ", 1)[1])


def stored_points(influx: Influxd, measurement: str, database: str) -> Counter[Point]:
    """How often influxd holds each (channel, time): more than once would be a point in two series."""
    rows = influx.rows(f'SELECT * FROM "{measurement}" GROUP BY *', database)
    return Counter((str(r["channel"]), int(r["time"])) for r in rows)


def faketime_env(offset_s: float) -> dict[str, str] | None:
    """Environment that starts a process's clocks `offset_s` s ahead (libfaketime); None without it."""
    libs = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not libs:
        return None
    return {"LD_PRELOAD": libs[0], "FAKETIME": f"+{max(int(offset_s), 0)}s"}
