"""Sampling cadence, snapshots and live configuration changes of the meter."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections import Counter

import pytest

from homemeter.config.roles import AGGREGATE_ROLES, Role
from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.snapshot import EnergyTotals
from tests.unit.sources import ConstantSource
from tests.unit.test_accounting import START, channels, make_meter


def test_channel_zero_every_window_mux_channels_every_second_window() -> None:
    source = ConstantSource(power={0: 100.0, 1: 50.0, 2: 50.0})
    meter = make_meter(source, n=4, ch1=Role.BATTERY)
    meter.simulate(80.0)  # 400 windows of 200 ms
    reads = Counter(ch for ch, _ in source.calls)
    assert reads[0] == 400
    assert reads[1] + reads[2] + reads[3] == 200
    # Battery (like grid) has double weight in the multiplexer schedule.
    assert reads[1] == 100 and reads[2] == 50 and reads[3] == 50


def test_snapshots_are_immutable_and_numbered() -> None:
    meter = make_meter(ConstantSource(power={0: 100.0}))
    first = meter.latest
    meter.simulate(1.0)
    second = meter.latest
    assert second.seq == first.seq + 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.voltage = 1.0  # type: ignore[misc]
    assert first.channels[0].active_energy_imported == 0.0


def test_no_channel_listed_before_first_reading() -> None:
    meter = make_meter(ConstantSource(power={0: 100.0}))
    assert list(meter.latest.with_readings()) == []
    meter.simulate(1.0)
    assert [c.index for c in meter.latest.with_readings()] == [0, 1, 2]


def test_role_aggregates_sum_active_channels_of_the_role() -> None:
    source = ConstantSource(power={0: 1000.0, 1: 300.0, 2: 200.0, 3: 150.0})
    meter = make_meter(source, n=4, ch1=Role.LOAD, ch2=Role.LOAD, ch3=Role.PV)
    meter.simulate(10.0)
    snap = meter.latest
    assert [a.role for a in snap.aggregates] == list(AGGREGATE_ROLES)
    assert snap.aggregate(Role.LOAD).active_power == pytest.approx(500.0)
    assert snap.aggregate(Role.PV).active_power == pytest.approx(150.0)
    assert snap.aggregate(Role.GRID).power_factor == pytest.approx(1.0)
    assert snap.aggregate(Role.BATTERY).apparent_power == 0.0


async def test_role_change_resets_that_channels_energy_only() -> None:
    meter = make_meter(ConstantSource(power={0: 1000.0, 1: 500.0, 2: 500.0}))
    meter.simulate(360.0)
    cfg = meter.channels[1].model_copy(update={"role": Role.PV})
    await meter.apply_channel(cfg)
    snap = meter.latest
    assert snap.channels[1].active_energy_imported == 0.0
    assert snap.channels[2].active_energy_imported == pytest.approx(50.0, rel=1e-2)


async def test_activated_channel_counts_energy_only_from_activation() -> None:
    meter = make_meter(ConstantSource(power={0: 1000.0, 1: 1000.0}), n=2)
    await meter.apply_channel(meter.channels[1].model_copy(update={"active": False}))
    meter.simulate(3600.0)
    assert meter.latest.channels[1].active_energy_imported == 0.0
    await meter.apply_channel(meter.channels[1].model_copy(update={"active": True}))
    meter.simulate(1800.0)
    assert meter.latest.channels[1].active_energy_imported == pytest.approx(500.0, rel=2e-3)


def test_restored_totals_continue_counting() -> None:
    source = ConstantSource(power={0: 1000.0})
    from homemeter.meter.clock import MeterClock
    from homemeter.meter.sampler import Meter
    from tests.unit.test_accounting import channels

    meter = Meter(
        source,
        channels(1),
        {0: EnergyTotals(5000.0, 10.0, 1.0, 2.0, 6000.0)},
        clock=MeterClock(start=START),
    )
    meter.simulate(3600.0)
    ch0 = meter.latest.channels[0]
    assert ch0.active_energy_imported == pytest.approx(6000.0, rel=1e-4)
    assert ch0.active_energy_exported == 10.0


@pytest.mark.serial  # measures timing: runs alone (tests/conftest.py)
async def test_a_slow_snapshot_consumer_never_delays_the_meter() -> None:
    """A consumer that takes 0.3 s per snapshot skips snapshots; the meter keeps its cadence."""
    clock = MeterClock(speed=10.0, start=START)
    meter = Meter(ConstantSource(power={0: 500.0}), channels(3), {}, clock=clock)
    seen: list[int] = []

    async def slow_consumer() -> None:
        async for snap in meter.snapshots():
            seen.append(snap.seq)
            await asyncio.sleep(0.3)

    started = time.monotonic()
    tasks = [asyncio.create_task(meter.run()), asyncio.create_task(slow_consumer())]
    try:
        while len(seen) < 4:  # bounded by the test timeout
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - started
    windows = meter.latest.readings  # channel 0 is read every window
    # 200 ms windows at 10x: 50 windows per real second, whatever the consumer does.
    assert windows >= 0.8 * 50 * elapsed
    assert any(b - a > 1 for a, b in itertools.pairwise(seen))  # it skipped, never queued
    assert seen == sorted(seen)


def test_the_source_is_told_the_next_multiplexed_channel_before_its_window() -> None:
    """Hardware switches its multiplexer on `select`, a window ahead of reading that channel."""
    source = ConstantSource()
    events: list[tuple[str, int]] = []
    source.select = lambda ch: events.append(("select", ch))  # type: ignore[method-assign]
    measure = source.measure
    source.measure = lambda ch, at: (events.append(("measure", ch)), measure(ch, at))[1]  # type: ignore[method-assign]
    make_meter(source, n=4).simulate(10.0)
    pending = None
    for kind, ch in events:
        if kind == "select":
            pending = ch
        elif ch != 0:
            assert ch == pending  # the channel read is the one announced, before its window
            pending = None
    assert sum(1 for kind, _ in events if kind == "select") >= 20


async def test_late_and_skipped_windows_are_counted() -> None:
    """A loop held up for over a window counts late windows; a stall past the catch-up limit skips."""
    clock = MeterClock(start=START)
    meter = Meter(ConstantSource(power={0: 500.0}), channels(3), {}, clock=clock)
    task = asyncio.create_task(meter.run())
    try:
        while meter.latest.readings < 2:  # running on time; bounded by the test timeout
            await asyncio.sleep(0.01)
        assert meter.latest.late_windows == meter.latest.skipped_windows == 0
        clock.start += 1.0  # the meter clock jumps as if the loop had been blocked for 1 s
        while meter.latest.late_windows == 0:
            await asyncio.sleep(0.01)
        # Those ending 0.2 s or more before the wake-up: 4 or 5 of the 5 or 6 that became due at once.
        late = meter.latest.late_windows
        assert 4 <= late <= 5
        assert meter.latest.skipped_windows == 0
        clock.start += 60.0  # a suspend: 300 windows, past the 25-window catch-up limit
        while meter.latest.skipped_windows == 0:
            await asyncio.sleep(0.01)
        assert meter.latest.skipped_windows >= 300
        assert meter.latest.late_windows == late  # skipped windows are not processed, so not late
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
