"""Energy history: `simulate` throughput, and query latency next to plain SQL on the same database.

1. Simulated days per second of the backfill (`homemeter simulate`) for 17 channels, next to the
   meter's own path (`Meter.simulate`, every 200 ms window) measured in the same run.
2. Ten years of hourly history (one simulated year, repeated with growing counters: the cost of a
   query depends on the rows, not on their values), then p50/p99 of the query API's engine for a day
   by hour, a month by day and ten years by month, in Europe/Rome, next to the plain SQL a naive
   implementation would run on the same database (GROUP BY over every hourly row, UTC buckets, no
   reset handling). Also: one year's device file (`energy/yearly/YYYY.csv.gz`) generated uncached.

Usage: python bench/history.py [--days 365] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import math
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs
from homemeter.store import archive
from homemeter.store.archive import HOUR
from homemeter.store.backfill import Simulation, simulate_into
from homemeter.store.energy_files import EnergyFiles, render
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
NAIVE_FILE = (
    "SELECT hour, channel, round(active_imported), round(active_exported) FROM history_hour "
    "WHERE hour >= ? AND hour < ? AND active = 1 ORDER BY hour, channel"
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


def ten_years(data_dir: Path, days: float) -> tuple[float, int, int]:
    """Simulate `days` ending now - 9 years, then repeat that year forward: (days/s, first, last)."""
    until = time.time() - 9 * YEAR
    t0 = time.perf_counter()
    simulate_into(data_dir, Simulation(default_channel_configs(CHANNELS), 0, days, until))
    rate = days / (time.perf_counter() - t0)
    conn = sqlite3.connect(data_dir / "energy.db", isolation_level=None)
    first, last = conn.execute("SELECT min(hour), max(hour) FROM history_hour WHERE status = 0").fetchone()
    span = last - first
    conn.execute("DELETE FROM history_hour WHERE status != 0")
    cols = ", ".join(archive.ENERGY_COLUMNS)
    for k in range(1, math.ceil(10 * YEAR / span)):
        # Each copy continues the counters where the previous one ended.
        conn.execute(
            f"INSERT OR IGNORE INTO history_hour (hour, channel, {cols}, active, status, rev) "
            f"SELECT hour + ?, h.channel, "
            + ", ".join(f"h.{c} + ? * e.{c}" for c in archive.ENERGY_COLUMNS)
            + " , active, status, rev FROM history_hour h JOIN "
            f"(SELECT channel, {cols} FROM history_hour WHERE hour = ?) e ON e.channel = h.channel "
            "WHERE hour >= ? AND hour <= ?",
            (k * span, *([k] * len(archive.ENERGY_COLUMNS)), last, first, last),
        )
    first, last = conn.execute("SELECT min(hour), max(hour) FROM history_hour").fetchone()
    conn.close()
    return rate, first, last


def percentiles(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]


async def _served(data_dir: Path, now: float, runs: int) -> None:
    """The yearly file as requests get it: after an hour was archived (the ETag is checked again, the
    file in memory is still good) and after a restart (nothing in memory, the day lines are kept)."""
    store = EnergyStore(data_dir)
    store.open()
    files = EnergyFiles(store, lambda: now)
    name = f"yearly/{datetime.fromtimestamp(now, ZoneInfo('UTC')).year - 1}.csv.gz"  # a whole year
    assert name in await files.listing()
    after_write, after_restart = [], []
    for k in range(runs):
        row = (int(now) // HOUR * HOUR + (k + 1) * HOUR, 0, 1e6, 0.0, 0.0, 0.0, 0.0, 1, 0)
        await store.call(archive.write, [row])  # the next hour closes
        t0 = time.perf_counter()
        await files.read(name)
        after_write.append((time.perf_counter() - t0) * 1000)
        files._cache.clear()
        t0 = time.perf_counter()
        await files.read(name)
        after_restart.append((time.perf_counter() - t0) * 1000)
    for what, times in (("after an hour was written", after_write), ("after a restart", after_restart)):
        times.sort()
        p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
        print(f"| device file energy/{name} served {what} | p50 {statistics.median(times):.1f} ms, "
              f"p99 {p99:.1f} ms | — | < 100 ms | {verdict(p99 < 100)} |")  # fmt: skip
    await asyncio.to_thread(store.close)


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
        rate, first, last = ten_years(data_dir, args.days)
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
        print("| measure | homemeter | same-run peer | goal | verdict |\n|---|---|---|---|---|")
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
        year_start = int(datetime(end.year - 1, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp())
        year = (year_start, year_start + YEAR)

        def yearly_file() -> bytes:
            versions = archive.file_versions(conn, *year)
            return render(archive.file_text(conn, *year, versions), compressed=True)

        def from_scratch() -> bytes:
            conn.execute("DELETE FROM history_chunk")
            return yearly_file()

        def naive_yearly() -> bytes:
            rows = conn.execute(NAIVE_FILE, year)
            return gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode())

        runs = max(3, args.runs // 5)
        s50, s99 = percentiles(from_scratch, runs)
        f50, f99 = percentiles(yearly_file, runs)
        n50, n99 = percentiles(naive_yearly, runs)
        content = yearly_file()
        size = f"{len(content) / 1e6:.2f} MB gzip of {len(gzip.decompress(content)) / 1e6:.1f} MB"
        print(
            f"| device file energy/yearly built, day lines kept | p50 {f50:.0f} ms, p99 {f99:.0f} ms, {size} "
            f"| rows fetched, joined and gzipped (level 9) in Python: p50 {n50:.0f} ms, p99 {n99:.0f} ms "
            f"| < 100 ms | {verdict(f99 < 100)} |"
        )
        print(
            f"| device file energy/yearly built from nothing (once: kept per day after) | p50 {s50:.0f} ms, "
            f"p99 {s99:.0f} ms | same peer | — | — |"
        )
        conn.close()
        asyncio.run(_served(data_dir, last, args.runs))


if __name__ == "__main__":
    main()
