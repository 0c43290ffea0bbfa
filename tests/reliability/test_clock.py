"""Clock jumps: an NTP step of the wall clock neither double-counts nor loses energy.

`MeterClock` reads the wall clock once (for timestamps) and measures every interval on the
monotonic clock, so energy depends only on real elapsed time. The meter runs for real here, with
a constant 3600 W load (1 Wh per second), while `time.time` jumps an hour forward and two back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from homemeter.config.channel import ChannelConfig
from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from tests.unit.sources import ConstantSource

POWER_W = 3600.0  # 1 Wh per second: energy in Wh reads as seconds


async def _run_meter(monkeypatch: pytest.MonkeyPatch, steps: tuple[float, ...]) -> tuple[float, float]:
    """(energy Wh, monotonic seconds) over a run in which the wall clock jumps by each of `steps`."""
    source = ConstantSource(power={0: POWER_W})
    meter = Meter(source, [ChannelConfig.default(0)], {}, clock=MeterClock(1.0), sample_time_ms=200)
    started = time.monotonic()
    task = asyncio.create_task(meter.run())
    real_time = time.time
    offset = 0.0
    for step in steps:
        await asyncio.sleep(0.5)
        offset += step
        monkeypatch.setattr(time, "time", lambda o=offset: real_time() + o)
    await asyncio.sleep(0.5)
    task.cancel()
    elapsed = time.monotonic() - started
    snapshot = meter.latest
    return snapshot.channels[0].active_energy_imported, elapsed


@pytest.mark.serial  # measures timing: runs alone (tests/conftest.py)
async def test_wall_clock_steps_do_not_change_energy(monkeypatch: pytest.MonkeyPatch) -> None:
    energy, elapsed = await _run_meter(monkeypatch, steps=(3600.0, -7200.0, 30.0))
    # What ran is what is counted, within the last window not yet processed (0.2 s).
    assert elapsed - 0.45 <= energy <= elapsed + 0.01, (energy, elapsed)


async def test_timestamps_stay_monotonic_across_a_backward_step(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = MeterClock(1.0)
    before = clock.now()
    monkeypatch.setattr(time, "time", lambda: 0.0)  # the wall clock falls back to 1970
    await asyncio.sleep(0.05)
    after = clock.now()
    assert 0.04 <= after - before < 1.0
