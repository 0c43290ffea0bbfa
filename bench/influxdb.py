"""InfluxDB writer: catch-up rate of a one-day backlog and CPU cost of live writing (issue 10).

Both against a real influxd of our own (tests/influxd.py: temp directory, free 127.0.0.1 ports), each
next to a bare httpx client writing the same lines to the same server in the same run:

- catch-up: a day of 17 channels at 1 s (86,400 intervals, 2.9 M lines) waits in homemeter's queue;
  the writer component (only its sender: no meter) writes it in 5,000-line batches, taking each from
  SQLite, decompressing, POSTing and deleting it (fsync). The bare client POSTs the same lines from
  memory in the same batches. Each writes into a fresh database. Points/s and the ratio.
- live: the component at frequency 1 fed one snapshot per interval (faster than real time, paced so
  it is always caught up): per interval it renders the 34 lines, commits them to the queue, POSTs
  and deletes them. The bare client POSTs the same pre-rendered 34 lines per interval. CPU time of
  this process (all threads) per interval, and the share of a core at one interval a second.
Usage: python bench/influxdb.py [--hours 24] [--live 300]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/http.py would shadow the standard library's `http` (httpx imports http.client): the script's
# directory leaves sys.path; the repository root joins it for tests.influxd.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    del sys.path[0]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.influxd import Influxd  # noqa: E402

from homemeter.component import Context  # noqa: E402
from homemeter.config.app import AppConfig  # noqa: E402
from homemeter.config.channel import ChannelConfig  # noqa: E402
from homemeter.config.influxdb import InfluxDbConfig  # noqa: E402
from homemeter.config.roles import Phase, Role  # noqa: E402
from homemeter.config.settings import Settings  # noqa: E402
from homemeter.integrations.influxdb.line_protocol import channel_lines  # noqa: E402
from homemeter.integrations.influxdb.queue import QUEUE_FILE, PointQueue  # noqa: E402
from homemeter.integrations.influxdb.writer import BATCH_POINTS, InfluxDbWriter  # noqa: E402
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot  # noqa: E402
from homemeter.system.issues import IssueRegistry  # noqa: E402

CHANNELS = 17
DEVICE = "a1b2c3d4e5f6"
START_MS = 1_767_225_600_000  # 2026-01-01
ROLES = (Role.GRID, Role.PV, Role.BATTERY, Role.INVERTER) + (Role.LOAD,) * 13


def reading(channel: int, ms: int) -> ChannelReading:
    """Plausible, varying values (a slow sine per channel) so the lines are not all alike."""
    t = ms / 1000.0
    p = 50.0 + 1500.0 * abs(math.sin(t / 600.0 + channel))
    s = p * 1.05
    return ChannelReading(
        index=channel, label=f"Channel {channel}", phase=Phase.L1, group_label="House", role=ROLES[channel],
        active=True, voltage=230.0 + math.sin(t / 60.0), current=s / 230.0, active_power=p,
        apparent_power=s, reactive_power=math.sqrt(s * s - p * p), power_factor=p / s,
        active_energy_imported=t * 0.3 + channel, active_energy_exported=0.0,
        reactive_energy_imported=t * 0.05, reactive_energy_exported=0.0, apparent_energy=t * 0.32,
        last_reading_ms=ms,
    )  # fmt: skip


def snapshot(second: int) -> MeterSnapshot:
    ms = START_MS + second * 1000
    channels = tuple(reading(c, ms) for c in range(CHANNELS))
    return MeterSnapshot(second + 1, ms / 1000.0, second * 1000, 230.0, 50.0, channels, ())


def interval_lines(second: int) -> list[str]:
    return [line for r in snapshot(second).channels for line in channel_lines("meter", r, DEVICE)]


class StubMeter:
    """A MeterView that yields the given snapshots, paced, then nothing."""

    def __init__(self, snaps: list[MeterSnapshot], pace: float) -> None:
        self._snaps, self._pace = snaps, pace
        self.latest = snaps[0] if snaps else snapshot(0)
        self.done = asyncio.Event()

    async def snapshots(self) -> AsyncIterator[MeterSnapshot]:
        for snap in self._snaps:
            self.latest = snap
            yield snap
            await asyncio.sleep(self._pace)
        self.done.set()
        await asyncio.Event().wait()

    def on_energy_change(self, listener: object) -> None:
        pass


def writer(data_dir: Path, influxd: Influxd, db: str, meter: StubMeter) -> InfluxDbWriter:
    cfg = InfluxDbConfig(enabled=True, server="127.0.0.1", port=influxd.http_port, version=1, database=db,
                         frequency=1)  # fmt: skip
    app = AppConfig(channels=tuple(ChannelConfig.default(i) for i in range(CHANNELS)), influxdb=cfg)
    ctx = Context(Settings(data_dir=data_dir), app, meter, IssueRegistry(), DEVICE, None, 0)  # type: ignore[arg-type]
    return InfluxDbWriter(ctx)


def batches(hours: float) -> Iterator[str]:
    """The day's lines in 5,000-line bodies, as the bare client sends them."""
    lines: list[str] = []
    for second in range(int(hours * 3600)):
        lines += interval_lines(second)
        if len(lines) >= BATCH_POINTS:
            yield "\n".join(lines[:BATCH_POINTS])
            lines = lines[BATCH_POINTS:]
    if lines:
        yield "\n".join(lines)


def fill_queue(path: Path, hours: float) -> int:
    q = PointQueue(path, 7 * 86400.0)
    # Filling is not measured: no fsync per interval here (the writer commits each one durably).
    q._db.execute("PRAGMA synchronous = OFF")
    for second in range(int(hours * 3600)):
        q.push((START_MS + second * 1000) * 1_000_000, interval_lines(second))
    points = q.points
    q.close()
    return points


async def catch_up_homemeter(data_dir: Path, influxd: Influxd, points: int) -> float:
    meter = StubMeter([], 0)  # no live points: only the backlog
    w = writer(data_dir, influxd, "homemeter", meter)
    t0 = time.perf_counter()
    await w.start()
    while w.details()["backlogPoints"]:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    await w.stop()
    assert w.counters.get("pointsWritten") == points, w.counters
    return points / elapsed


async def catch_up_bare(influxd: Influxd, bodies: list[str]) -> float:
    points = sum(b.count("\n") + 1 for b in bodies)
    async with httpx.AsyncClient(timeout=60) as client:
        t0 = time.perf_counter()
        for body in bodies:
            r = await client.post(f"{influxd.url}/write", params={"db": "bare"}, content=body.encode())
            r.raise_for_status()
        return points / (time.perf_counter() - t0)


async def live_homemeter(data_dir: Path, influxd: Influxd, intervals: int, pace: float) -> float:
    meter = StubMeter([snapshot(s) for s in range(intervals)], pace)
    w = writer(data_dir, influxd, "live_homemeter", meter)
    await w.start()
    cpu0 = time.process_time()
    await meter.done.wait()
    while w.details()["backlogPoints"]:
        await asyncio.sleep(0.005)
    cpu = time.process_time() - cpu0
    await w.stop()
    return cpu / intervals


async def live_bare(influxd: Influxd, intervals: int, pace: float) -> float:
    bodies = ["\n".join(interval_lines(s)).encode() for s in range(intervals)]
    async with httpx.AsyncClient(timeout=60) as client:
        cpu0 = time.process_time()
        for body in bodies:
            r = await client.post(f"{influxd.url}/write", params={"db": "live_bare"}, content=body)
            r.raise_for_status()
            await asyncio.sleep(pace)
        return (time.process_time() - cpu0) / intervals


async def main(hours: float, intervals: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-influxdb-") as tmp:
        root = Path(tmp)
        influxd = Influxd(root / "influxd").start()
        try:
            for db in ("homemeter", "bare", "live_homemeter", "live_bare"):
                influxd.create_database(db)
            print(f"preparing {hours:g} h of {CHANNELS} channels at 1 s ...", flush=True)
            t0 = time.perf_counter()
            data = root / "data"
            data.mkdir()
            points = fill_queue(data / QUEUE_FILE, hours)
            bodies = list(batches(hours))
            size = (data / QUEUE_FILE).stat().st_size
            print(
                f"  {points:,} lines, queue file {size / 1e6:.0f} MB, in {time.perf_counter() - t0:.0f} s\n"
            )

            bare_rate = await catch_up_bare(influxd, bodies)
            hm_rate = await catch_up_homemeter(data, influxd, points)
            del bodies
            pace = 0.02  # s between intervals: 50 a second, always caught up
            bare_cpu = await live_bare(influxd, intervals, pace)
            (root / "live").mkdir()
            hm_cpu = await live_homemeter(root / "live", influxd, intervals, pace)
        finally:
            influxd.stop()

    catch_up, live = hm_rate / bare_rate, hm_cpu * 100
    print("| catch-up into influxd 1.x | points/s | ratio |")
    print("|---|---:|---:|")
    print(f"| bare httpx client, 5,000-line bodies from memory | {bare_rate:,.0f} | 1.00 |")
    print(f"| homemeter writer, from its disk queue | {hm_rate:,.0f} | {catch_up:.2f} |")
    day = 86_400 * CHANNELS * 2
    drains = f"drains in {day / hm_rate:.0f} s (bare: {day / bare_rate:.0f} s)"
    print(f"\nA day's backlog ({day:,} lines) {drains}.\n")
    print("| live writing, 34 lines per interval | CPU ms per interval | share of a core at 1/s | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| bare httpx client, lines given | {bare_cpu * 1e3:.2f} | {bare_cpu * 100:.2f} % | 1.00 |")
    print(f"| homemeter: render, queue (fsync), POST, delete | {hm_cpu * 1e3:.2f} | {live:.2f} % "
          f"| {hm_cpu / bare_cpu:.2f} |")  # fmt: skip
    print("\n| goal | measured | verdict |")
    print("|---|---:|---|")
    print(f"| catch-up at least half the bare client's rate | {catch_up:.2f}x | {verdict(catch_up >= 0.5)} |")
    print(f"| live writing under 1 % of a core at frequency 1 | {live:.2f} % | {verdict(live < 1.0)} |")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hours", type=float, default=24.0, help="backlog length (default: a day)")
    p.add_argument("--live", type=int, default=300, help="live intervals measured (default 300)")
    return p.parse_args()


if __name__ == "__main__":
    args = parse()
    asyncio.run(main(args.hours, args.live))
