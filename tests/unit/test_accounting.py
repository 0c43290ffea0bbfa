"""Energy accounting: exact integration over real elapsed time, counters that never go down."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Role
from homemeter.meter.accounting import EnergyCounter
from homemeter.meter.clock import MeterClock
from homemeter.meter.reading import process
from homemeter.meter.sampler import Meter
from tests.unit.sources import ConstantSource, measurement

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def channels(n: int = 3, **roles: Role) -> list[ChannelConfig]:
    out = []
    for i in range(n):
        base = ChannelConfig.default(i)
        out.append(base.model_copy(update={"active": True, "role": roles.get(f"ch{i}", base.role)}))
    return out


def make_meter(source: ConstantSource, n: int = 3, **roles: Role) -> Meter:
    return Meter(source, channels(n, **roles), {}, clock=MeterClock(start=START))


def test_constant_1000w_for_one_hour_gives_1000wh() -> None:
    meter = make_meter(ConstantSource(power={0: 1000.0, 1: 1000.0, 2: 1000.0}))
    meter.simulate(3600.0)
    for ch in meter.latest.channels:
        # Multiplexed channels are read every ~0.8 s and credited for the whole gap.
        assert ch.active_energy_imported == pytest.approx(1000.0, rel=1e-3), ch.index
        assert ch.active_energy_exported == 0.0


def test_failed_reads_lose_no_energy() -> None:
    source = ConstantSource(power={0: 1000.0, 1: 500.0, 2: 250.0}, fail_every=7)
    meter = make_meter(source)
    meter.simulate(3600.0)
    values = [c.active_energy_imported for c in meter.latest.channels]
    assert values == pytest.approx([1000.0, 500.0, 250.0], rel=1e-3)
    assert meter.failures > 0


def test_late_and_skipped_windows_neither_lose_nor_double_energy() -> None:
    meter = make_meter(ConstantSource(power={0: 2000.0}), n=1)
    at = START
    # Irregular windows: some very late, some repeated at the same instant.
    for gap in [0.2, 0.2, 5.0, 0.0, 0.2, 30.0, 0.0, 0.0, 3564.4]:
        at += gap
        meter.step(at)
    meter.publish(at)
    assert meter.latest.channels[0].active_energy_imported == pytest.approx(2000.0, rel=1e-7)


def test_grid_export_counts_as_exported_energy() -> None:
    meter = make_meter(ConstantSource(power={0: -1500.0}), n=1)
    meter.simulate(1800.0)
    ch0 = meter.latest.channels[0]
    assert ch0.active_power == pytest.approx(-1500.0)
    assert ch0.active_energy_exported == pytest.approx(750.0, rel=1e-3)
    assert ch0.active_energy_imported == 0.0


def test_negative_load_reading_is_clamped_and_counts_nothing() -> None:
    meter = make_meter(ConstantSource(power={0: 100.0, 1: -400.0}), n=2)
    meter.simulate(600.0)
    load = meter.latest.channels[1]
    assert load.active_power == 0.0
    assert load.active_energy_imported == 0.0 and load.active_energy_exported == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-20_000, 20_000, allow_nan=False),
            st.floats(-5_000, 5_000, allow_nan=False),
            st.floats(0, 120, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_counters_never_decrease(steps: list[tuple[float, float, float]]) -> None:
    counter = EnergyCounter()
    cfg = ChannelConfig.default(0)
    before = counter.totals().as_tuple()
    for p, q, dt in steps:
        reading = process(measurement(p, q), cfg)
        if reading is not None:
            counter.add(reading, dt)
        after = counter.totals().as_tuple()
        assert all(b <= a for b, a in zip(before, after, strict=True))
        before = after
