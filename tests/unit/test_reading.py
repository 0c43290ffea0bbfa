"""The per-reading pipeline: physical invariants and the device's sign rules, for any input."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase, Role
from homemeter.meter.reading import process
from tests.unit.sources import measurement

powers = st.floats(-30_000, 30_000, allow_nan=False)
roles = st.sampled_from(list(Role))


def config(role: Role, reverse: bool = False, phase: Phase = Phase.L1) -> ChannelConfig:
    return ChannelConfig.default(1).model_copy(
        update={"active": True, "role": role, "reverse": reverse, "phase": phase}
    )


@given(powers, powers, roles, st.booleans())
def test_reading_is_physically_consistent(p: float, q: float, role: Role, reverse: bool) -> None:
    r = process(measurement(p, q), config(role, reverse))
    assert r is not None
    assert r.current >= 0.0 and r.apparent_power >= 0.0
    assert -1.0 <= r.power_factor <= 1.0
    assert math.isclose(r.apparent_power, r.voltage * r.current, rel_tol=1e-9, abs_tol=1e-9)
    assert r.active_power**2 + r.reactive_power**2 <= r.apparent_power**2 * (1 + 1e-9) + 1e-9
    if role.clamps_negative:
        assert r.active_power >= 0.0


@given(powers, powers)
def test_reverse_flips_active_and_reactive_together(p: float, q: float) -> None:
    plain = process(measurement(p, q), config(Role.GRID))
    flipped = process(measurement(p, q), config(Role.GRID, reverse=True))
    assert plain is not None and flipped is not None
    assert flipped.active_power == -plain.active_power
    assert flipped.reactive_power == -plain.reactive_power
    assert flipped.apparent_power == plain.apparent_power


@given(powers, powers)
def test_power_factor_carries_sign_of_p_times_sign_of_q(p: float, q: float) -> None:
    r = process(measurement(p, q), config(Role.GRID))
    assert r is not None
    if r.active_power != 0.0:
        sign = math.copysign(1.0, r.active_power) * (1.0 if r.reactive_power >= 0 else -1.0)
        assert math.copysign(1.0, r.power_factor) == sign
        assert abs(r.power_factor) >= 0.10  # below that the device treats it as no load


def test_below_noload_threshold_reads_zero() -> None:
    r = process(measurement(0.3, 0.1), config(Role.LOAD))
    assert r is not None and (r.active_power, r.current, r.power_factor) == (0.0, 0.0, 0.0)


def test_split_phase_doubles_voltage_and_power() -> None:
    r = process(measurement(1000.0, 100.0), config(Role.LOAD, phase=Phase.SPLIT))
    assert r is not None
    assert r.voltage == 460.0 and r.active_power == 2000.0


def test_scaling_fraction_scales_power_not_voltage() -> None:
    cfg = config(Role.LOAD).model_copy(
        update={
            "ctSpecification": config(Role.LOAD).ctSpecification.model_copy(update={"scalingFraction": 0.1})
        }
    )
    r = process(measurement(1000.0), cfg)
    assert r is not None and r.voltage == 230.0
    assert math.isclose(r.active_power, 1100.0)


def test_out_of_range_reading_is_discarded() -> None:
    assert process(measurement(150_000.0), config(Role.GRID)) is None
