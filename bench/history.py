"""Energy history: `simulate` throughput, and query latency next to plain SQL on the same database.

1. Simulated days per second of the backfill (`homemeter simulate`) for 17 channels, next to the
   meter's own path (`Meter.simulate`, every 200 ms window) measured in the same run.
2. Ten years of hourly history (one simulated year, repeated with growing counters: the cost of a
   query depends on the rows, not on their values), then p50/p99 of the query API's engine for a day
   by hour, a month by day and ten years by month, in Europe/Rome, next to the plain SQL a naive
   implementation would run on the same database (GROUP BY over every hourly row, UTC buckets, no
   reset handling).
3. One whole year's device file (`energy/yearly/YYYY.csv.gz`, 17 channels) as the files endpoint gets
   it (`EnergyFiles.read` through the database's writer thread): the first request after `simulate`,
   the first request after a restart (database closed and opened again, nothing in memory), and in
   steady state (nothing written since the last request; an hour written since), next to plain SQL
   formatting the same rows and gzip (level 1) compressing them, in the same run.

Usage: python bench/history.py [--days 365] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import gzip
import math
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs
from homemeter.store import archive
from homemeter.store.archive import HOUR
from homemeter.store.backfill import Simulation, simulate_into
from homemeter.store.energy_files import HEADER, EnergyFiles
from homemeter.store.energy_store import EnergyStore
from homemeter.store.history_query import (
    Buckets,
    GroupBy,
    LiveChannel,
    LiveState,
    Resolution,
    buckets,
    energy,
)

CHANNELS = 17
YEAR = 365 * 86_400
TZ = ZoneInfo("Europe/Rome")
# The peer: the same file content from one query, SQLite formatting the rows, gzip at its fastest.
NAIVE_FILE = (
    "SELECT group_concat(line, char(10)) FROM (SELECT "
    "strftime('%Y-%m-%dT%H:%M:%S.000Z', hour, 'unixepoch') || ',' || channel || ',' || "
    "CAST(round(active_imported) AS INTEGER) || ',' || CAST(round(active_exported) AS INTEGER) AS line "
    "FROM history_hour WHERE hour >= ? AND hour < ? AND active = 1 "
    "AND (active_imported > 100 OR active_exported > 100) ORDER BY hour, channel)"
)
NAIVE_SQL = (
    "SELECT channel, (hour - ?) / ? AS bucket, max(active_imported) - min(active_imported), "
    "max(active_exported) - min(active_exported) FROM history_hour WHERE hour >= ? AND hour <= ? "
    "GROUP BY channel, bucket"
)


def meter_days_per_second(seconds: float = 2 * HOUR) -> float:
    meter = Meter(
        HouseholdSimulator(seed=0, channel_count=CHANNELS),
        default_channel_configs(CHANNELS),
        {},
        clock=MeterClock(1000.0, start=1_767_225_600.0),
    )
    t0 = time.perf_counter()
    meter.simulate(seconds)
    return seconds / 86_400 / (time.perf_counter() - t0)


def ten_years(data_dir: Path, days: float, runs: int) -> tuple[float, int, int]:
    """Simulate `days` ending on 1 January nine years ago (a whole calendar year), measure its yearly
    file's first request, then repeat that year forward: (days/s, first, last)."""
    year = datetime.now(UTC).year - 9
    until = datetime(year, 1, 1, tzinfo=UTC).timestamp()
    t0 = time.perf_counter()
    simulate_into(data_dir, Simulation(default_channel_configs(CHANNELS), 0, days, until))
    rate = days / (time.perf_counter() - t0)
    asyncio.run(first_after_simulate(data_dir, until, f"yearly/{year - 1}.csv.gz", runs))
    conn = sqlite3.connect(data_dir / "energy.db", isolation_level=None)
    first, last = conn.execute("SELECT min(hour), max(hour) FROM history_hour WHERE status = 0").fetchone()
    span = last - first
    conn.execute("DELETE FROM history_hour WHERE status != 0")
    cols = ", ".join(archive.ENERGY_COLUMNS)
    for k in range(1, math.ceil(10 * YEAR / span)):
        # Each copy continues the counters where the previous one ended.
        conn.execute(
            f"INSERT OR IGNORE INTO history_hour (hour, channel, {cols}, active, status) "
            f"SELECT hour + ?, h.channel, "
            + ", ".join(f"h.{c} + ? * e.{c}" for c in archive.ENERGY_COLUMNS)
            + " , active, status FROM history_hour h JOIN "
            f"(SELECT channel, {cols} FROM history_hour WHERE hour = ?) e ON e.channel = h.channel "
            "WHERE hour >= ? AND hour <= ?",
            (k * span, *([k] * len(archive.ENERGY_COLUMNS)), last, first, last),
        )
    first, last = conn.execute("SELECT min(hour), max(hour) FROM history_hour").fetchone()
    with conn:  # rows copied around archive.write: their days' file pieces are made again
        conn.execute("BEGIN IMMEDIATE")
        archive.forget_file_days(conn)
    t0 = time.perf_counter()
    while archive.build_file_days(conn, 0, last // 86_400 + 1, 365):
        pass
    print(f"| device file pieces of ten years made from nothing (once, as for a database from before them) "
          f"| {time.perf_counter() - t0:.1f} s | — | — | — |")  # fmt: skip
    conn.close()
    return rate, first, last


def percentiles(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return p50_p99(times)


def p50_p99(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]


def naive_file(conn: sqlite3.Connection, start: int, end: int) -> bytes:
    """The peer: the same content as one plain query, compressed whole."""
    (rows,) = conn.execute(NAIVE_FILE, (start, end)).fetchone()
    return gzip.compress(f"{HEADER}\n{rows}\n".encode(), compresslevel=1, mtime=0)


async def _timed_read(files: EnergyFiles, name: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    found = await files.read(name)
    elapsed = (time.perf_counter() - t0) * 1000
    assert found is not None, name
    return elapsed, found.content


async def first_after_simulate(data_dir: Path, now: float, name: str, runs: int) -> None:
    """The very first request for the year's file right after `simulate` (one sample), checked
    against the peer's content, then the peer itself."""
    store = EnergyStore(data_dir)
    store.open()
    ms, content = await _timed_read(EnergyFiles(store, lambda: now), name)
    await asyncio.to_thread(store.close)
    conn = sqlite3.connect(data_dir / "energy.db")
    year = int(datetime.strptime(name[7:11], "%Y").replace(tzinfo=UTC).timestamp())
    period = (year, int(now))
    assert gzip.decompress(content) == gzip.decompress(naive_file(conn, *period)), "content differs"
    q50, q99 = _peer_ms(conn, period, runs)
    conn.close()
    lines = gzip.decompress(content).count(b"\n") - 1
    print(f"| device file energy/{name} ({lines:,} rows, {len(content) / 1e6:.2f} MB), first request after "
          f"simulate | {ms:.1f} ms (one sample) | plain SQL + gzip -1 of the same rows: p50 {q50:.0f} ms, "
          f"p99 {q99:.0f} ms | < 100 ms (aim < 30) | {verdict(ms < 100)} |")  # fmt: skip


def _peer_ms(conn: sqlite3.Connection, period: tuple[int, int], runs: int) -> tuple[float, float]:
    """p50 and p99 ms of the peer: the same rows by plain SQL, gzipped."""
    times = []
    for _ in range(max(3, runs // 3)):
        t0 = time.perf_counter()
        naive_file(conn, *period)
        times.append((time.perf_counter() - t0) * 1000)
    return p50_p99(times)


async def _served(data_dir: Path, now: float, runs: int) -> None:
    """The yearly file as requests get it, on the ten-year database, next to the peer."""
    name = f"yearly/{datetime.fromtimestamp(now, UTC).year - 1}.csv.gz"  # a whole year
    store = EnergyStore(data_dir)
    store.open()
    files = EnergyFiles(store, lambda: now)
    restart, steady, after_write = [], [], []
    for _ in range(runs):  # a restart: database opened again, nothing in memory
        await asyncio.to_thread(store.close)
        store = EnergyStore(data_dir)
        store.open()
        files = EnergyFiles(store, lambda: now)
        restart.append((await _timed_read(files, name))[0])
    for k in range(3 * runs):  # cheap: more samples, a p99 that is not just the slowest one
        steady.append((await _timed_read(files, name))[0])
        row = (int(now) // HOUR * HOUR + (k + 1) * HOUR, 0, 1e6, 0.0, 0.0, 0.0, 0.0, 1, 0)
        await store.call(archive.write, [row])  # the next hour closes
        after_write.append((await _timed_read(files, name))[0])
    await asyncio.to_thread(store.close)
    conn = sqlite3.connect(data_dir / "energy.db")
    year = int(datetime.strptime(name[7:11], "%Y").replace(tzinfo=UTC).timestamp())
    period = (year, year + (366 if calendar.isleap(int(name[7:11])) else 365) * 86_400)
    q50, q99 = _peer_ms(conn, period, runs)
    conn.close()
    for what, times in (
        ("first request after a restart", restart),
        ("steady, nothing written since", steady),
        ("steady, an hour written since", after_write),
    ):
        p50, p99 = p50_p99(times)
        print(f"| device file energy/{name}, {what} | p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"| plain SQL + gzip -1: p50 {q50:.0f} ms, p99 {q99:.0f} ms ({q50 / p50:.0f}x homemeter's p50) "
              f"| < 100 ms (aim < 30) | {verdict(p99 < 100)} |")  # fmt: skip


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=float, default=365.0, help="days simulated (default: 365)")
    parser.add_argument("--runs", type=int, default=30, help="runs per query (default: 30)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        peer = meter_days_per_second()
        print("| measure | homemeter | same-run peer | goal | verdict |\n|---|---|---|---|---|")
        rate, first, last = ten_years(data_dir, args.days, args.runs)
        conn = sqlite3.connect(data_dir / "energy.db", isolation_level=None)
        rows = conn.execute("SELECT count(*) FROM history_hour").fetchone()[0]
        latest = {
            c: LiveChannel(f"Channel {c}", "load", f"Group {c}", i, e)
            for c, i, e in conn.execute(
                "SELECT channel, active_imported, active_exported FROM history_hour WHERE hour = ?", (last,)
            )
        }
        live = LiveState(last + 1800.0, latest)
        end = datetime.fromtimestamp(last, TZ)
        cases = (
            ("a day by hour", end - timedelta(days=1), Resolution.HOUR, HOUR),
            ("a month by day", end - timedelta(days=30), Resolution.DAY, 86_400),
            ("ten years by month", datetime.fromtimestamp(first, TZ), Resolution.MONTH, 30 * 86_400),
        )
        print(
            f"| simulate, {CHANNELS} channels | {rate:.1f} simulated days/s (a year in {365 / rate:.0f} s) "
            f"| meter path (every 200 ms window): {peer:.3f} days/s (homemeter {rate / peer:.0f}x faster) "
            f"| a year < 120 s | {verdict(365 / rate < 120)} |"
        )
        print(f"| archive | {rows:,} hourly rows, {(last - first) / YEAR:.1f} years | — | — | — |")
        for name, start, resolution, step in cases:
            b = buckets(start, end, resolution, TZ)

            def ours(b: Buckets = b) -> bytes:
                return orjson.dumps([s.imported for s in energy(conn, b, GroupBy.CHANNEL, live).series])

            def naive(start: datetime = start, step: int = step) -> list[object]:
                t0 = int(start.timestamp())
                return conn.execute(NAIVE_SQL, (t0, step, t0, last)).fetchall()

            p50, p99 = percentiles(ours, args.runs)
            q50, q99 = percentiles(naive, args.runs)
            goal = ("< 200 ms", verdict(p99 < 200)) if resolution is Resolution.MONTH else ("—", "—")
            print(
                f"| query {name} ({len(b.starts)} buckets x {CHANNELS}) | p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"| plain SQL GROUP BY: p50 {q50:.1f} ms, p99 {q99:.1f} ms | {goal[0]} | {goal[1]} |"
            )
        conn.close()
        asyncio.run(_served(data_dir, last, args.runs))


if __name__ == "__main__":
    main()
