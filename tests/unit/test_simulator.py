"""The household simulator: deterministic, physically consistent, and a house that behaves like one."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homemeter.config.channel import MAX_CHANNELS, check_channel_set
from homemeter.config.roles import Role
from homemeter.meter.source import Measurement, SampleSource
from homemeter.meter.sources.simulator import (
    BATTERY_MAX_W,
    POWER_NOISE,
    SOC_MAX,
    SOC_MIN,
    HouseholdSimulator,
    clear_sky_pv,
    default_channel_configs,
)

# Longitude 10° E: the household's civil clock is UTC+1 (no daylight saving).
LOCAL = dt.timezone(dt.timedelta(hours=1))
GRID, PV, BATTERY = 0, 1, 2
LOADS = range(3, 13)
SPARE = range(13, MAX_CHANNELS)
EV_CHARGER, FRIDGE = 6, 10


def local(year: int, month: int, day: int, hour: float = 0.0) -> float:
    return dt.datetime(year, month, day, tzinfo=LOCAL).timestamp() + hour * 3600.0


def branch_balance(ms: list[Measurement]) -> tuple[float, float]:
    """What channel 0 should read: loads minus PV minus battery, for P and Q."""
    p = sum(ms[c].active_power for c in LOADS) - ms[PV].active_power - ms[BATTERY].active_power
    q = sum(ms[c].reactive_power for c in LOADS) - ms[PV].reactive_power - ms[BATTERY].reactive_power
    return p, q


def day_energies(sim: HouseholdSimulator, start: float, step: float = 10.0) -> list[float]:
    """Wh per channel over one day, sampled every `step` s (zero-order hold, like the meter)."""
    energy = [0.0] * sim.channel_count
    for k in range(round(86_400 / step)):
        t = start + k * step
        for ch in range(sim.channel_count):
            energy[ch] += sim.measure(ch, t).active_power * step / 3600.0
    return energy


# ------------------------------------------------------------------ determinism
def _meter_cadence(sim: HouseholdSimulator, start: float, windows: int) -> list[object]:
    out: list[object] = []
    for i in range(windows):
        t = start + 0.2 * i
        sim.advance(t)
        if i % 2 == 0:
            out.append(sim.measure(3 + (i // 2) % 10, t))
        out.append(sim.measure(0, t))
        out.append(sim.grid_frequency(t))
    return out


def test_same_seed_same_sequence_different_seed_differs() -> None:
    start = local(2025, 3, 14, 17.5)  # evening: appliances switching, battery discharging
    a = _meter_cadence(HouseholdSimulator(seed=7), start, 18_000)
    b = _meter_cadence(HouseholdSimulator(seed=7), start, 18_000)
    c = _meter_cadence(HouseholdSimulator(seed=8), start, 18_000)
    assert a == b
    assert a != c


def test_days_schedule_does_not_depend_on_when_the_simulation_started() -> None:
    evening = local(2025, 2, 3, 17.0)
    early = HouseholdSimulator(seed=3)
    for k in range(0, 2 * 86_400, 300):  # started two days earlier
        early.advance(evening - 2 * 86_400 + k)
    late = HouseholdSimulator(seed=3)
    late.advance(evening - 600.0)
    for k in range(0, 6 * 3600, 30):
        t = evening + k
        for ch in (PV, *LOADS):
            # Powers only: voltage (and so current) follows the grid, which the battery's history sets.
            a, b = early.measure(ch, t), late.measure(ch, t)
            assert (a.active_power, a.reactive_power) == (b.active_power, b.reactive_power), (ch, k)


def test_simulator_satisfies_the_sample_source_protocol() -> None:
    source: SampleSource = HouseholdSimulator()
    assert 49.95 <= source.grid_frequency(local(2025, 1, 1)) <= 50.05


# ------------------------------------------------------------------ physics at any instant
@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    at=st.floats(local(2024, 1, 1), local(2027, 1, 1)),
)
def test_every_measurement_is_physically_consistent(seed: int, at: float) -> None:
    sim = HouseholdSimulator(seed=seed)
    ms = [sim.measure(ch, at) for ch in range(MAX_CHANNELS)]
    for ch, m in enumerate(ms):
        assert 215.0 <= m.voltage <= 245.0
        assert m.current >= 0.0 and m.apparent_power >= 0.0
        assert m.apparent_power == pytest.approx(m.voltage * m.current, rel=1e-12, abs=1e-12)
        assert m.apparent_power**2 == pytest.approx(
            m.active_power**2 + m.reactive_power**2, rel=1e-9, abs=1e-9
        ), ch
    assert all(ms[c].active_power >= 0.0 for c in LOADS)
    assert ms[PV].active_power >= 0.0
    assert abs(ms[BATTERY].active_power) <= BATTERY_MAX_W * (1 + POWER_NOISE)
    assert all(ms[c].current == 0.0 and ms[c].apparent_power == 0.0 for c in SPARE)
    # Channel 0 is the balance of the branches; each reading carries up to POWER_NOISE.
    p, q = branch_balance(ms)
    gross_p = abs(ms[GRID].active_power) + sum(abs(m.active_power) for m in ms[1:])
    gross_q = abs(ms[GRID].reactive_power) + sum(abs(m.reactive_power) for m in ms[1:])
    assert abs(ms[GRID].active_power - p) <= POWER_NOISE * gross_p + 1e-9
    assert abs(ms[GRID].reactive_power - q) <= POWER_NOISE * gross_q + 1e-9
    assert 49.95 <= sim.grid_frequency(at) <= 50.05


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    day=st.integers(0, 3 * 365),
    hour=st.floats(-2.5, 2.5),  # around local midnight, in every season
)
def test_pv_is_zero_at_night(seed: int, day: int, hour: float) -> None:
    at = local(2024, 1, 1) + day * 86_400 + hour * 3600
    m = HouseholdSimulator(seed=seed).measure(PV, at)
    assert m.active_power == 0.0 and m.current == 0.0


def test_clear_sky_pv_peaks_near_solar_noon_and_follows_longitude() -> None:
    midnight_utc = dt.datetime(2025, 6, 21, tzinfo=dt.UTC).timestamp()
    minutes = [midnight_utc + 60.0 * k for k in range(1440)]

    def peak(longitude: float) -> tuple[float, float]:
        power = [clear_sky_pv(t, longitude) for t in minutes]
        best = max(range(1440), key=power.__getitem__)
        return best / 60.0, power[best]

    east_hour, east_w = peak(10.0)  # solar noon ~11:20 UTC
    west_hour, _ = peak(-5.0)  # an hour later
    assert 10.8 <= east_hour <= 11.9
    assert 5_000.0 <= east_w <= 6_000.0
    assert west_hour - east_hour == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("seed", range(4))
def test_pv_daily_energy_is_plausible(seed: int) -> None:
    sim = HouseholdSimulator(seed=seed)
    summer = day_energies(sim, local(2025, 6, 20), step=30.0)[PV] / 1000.0
    sim = HouseholdSimulator(seed=seed)
    winter = day_energies(sim, local(2025, 12, 20), step=30.0)[PV] / 1000.0
    assert 10.0 <= summer <= 45.0
    assert 0.5 <= winter < summer


# ------------------------------------------------------------------ battery
def test_battery_stays_within_soc_limits_and_cycles_daily() -> None:
    sim = HouseholdSimulator(seed=0)
    start = local(2025, 5, 1)
    for day in range(4):
        t0 = start + day * 86_400
        soc: list[float] = []
        power: list[float] = []
        for k in range(1440):
            t = t0 + 60.0 * k
            soc.append(sim.state_of_charge(t))
            power.append(sim.measure(BATTERY, t).active_power)
        assert all(SOC_MIN <= s <= SOC_MAX for s in soc)
        # Charges from the midday surplus, gives it back in the evening.
        assert min(power[8 * 60 : 14 * 60]) < -1_000.0
        assert soc[15 * 60] > soc[8 * 60] + 0.3
        assert max(power[18 * 60 :]) > 500.0
        assert soc[-1] < soc[18 * 60] - 0.2


def test_battery_never_charges_from_the_grid_at_night() -> None:
    sim = HouseholdSimulator(seed=5)
    start = local(2025, 1, 10)
    for k in range(0, 3 * 86_400, 120):
        t = start + k
        hour = (k % 86_400) / 3600
        if hour < 5 or hour > 22:
            assert sim.measure(BATTERY, t).active_power >= 0.0
            assert sim.measure(PV, t).active_power == 0.0


# ------------------------------------------------------------------ grid balance over a day
@pytest.mark.parametrize("date", [(2025, 1, 15), (2025, 6, 21)])
def test_grid_energy_equals_loads_minus_pv_minus_battery(date: tuple[int, int, int]) -> None:
    sim = HouseholdSimulator(seed=11)
    energy = day_energies(sim, local(*date))
    loads = sum(energy[c] for c in LOADS)
    expected = loads - energy[PV] - energy[BATTERY]
    throughput = loads + energy[PV] + abs(energy[BATTERY])
    assert loads > 3_000.0  # a household's day, not an idle simulator
    assert abs(energy[GRID] - expected) <= 0.01 * throughput


def test_fewer_channels_means_fewer_circuits_and_the_grid_still_balances() -> None:
    sim = HouseholdSimulator(seed=2, channel_count=6)  # grid, PV, battery, kitchen, oven, heat pump
    at = local(2025, 1, 20, 7.0)
    ms = [sim.measure(ch, at) for ch in range(6)]
    p = sum(m.active_power for m in ms[3:]) - ms[PV].active_power - ms[BATTERY].active_power
    gross = sum(abs(m.active_power) for m in ms)
    assert sum(m.active_power for m in ms[3:]) > 500.0  # the heat pump's morning
    assert abs(ms[GRID].active_power - p) <= POWER_NOISE * gross
    with pytest.raises(ValueError):
        sim.measure(6, at)
    with pytest.raises(ValueError):
        sim.measure(-1, at)
    with pytest.raises(ValueError):
        HouseholdSimulator(channel_count=MAX_CHANNELS + 1)


# ------------------------------------------------------------------ household behaviour
def test_appliances_behave_like_appliances() -> None:
    sim = HouseholdSimulator(seed=4)
    start = local(2025, 10, 6)  # a Monday
    fridge_on = 0
    ev_hours: set[int] = set()
    samples = 0
    for k in range(0, 7 * 86_400, 60):
        t = start + k
        samples += 1
        fridge = sim.measure(FRIDGE, t)
        if fridge.active_power > 0.0:
            fridge_on += 1
            assert 80.0 <= fridge.active_power <= 120.0
            assert 0.8 <= fridge.active_power / fridge.apparent_power <= 0.9  # compressor: inductive
            assert fridge.reactive_power > 0.0
        ev = sim.measure(EV_CHARGER, t).active_power
        if ev > 5_000.0:
            ev_hours.add(int((k % 86_400) // 3600))
    assert 0.25 <= fridge_on / samples <= 0.45  # ~20 min on, ~40 min off
    assert ev_hours, "no EV session in a week"
    assert ev_hours <= {17, 18, 19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5}  # evening sessions only


def test_frequency_wanders_slowly_within_50mhz() -> None:
    sim = HouseholdSimulator(seed=9)
    start = local(2025, 8, 1)
    f = [sim.grid_frequency(start + 10.0 * k) for k in range(8640)]
    assert all(49.95 <= x <= 50.05 for x in f)
    assert max(f) - min(f) > 0.03  # it moves ...
    assert max(abs(b - a) for a, b in itertools.pairwise(f)) < 0.015  # ... slowly


def test_voltage_is_higher_while_exporting() -> None:
    sim = HouseholdSimulator(seed=1)
    start = local(2025, 6, 1)
    exporting: list[float] = []
    importing: list[float] = []
    for k in range(0, 5 * 86_400, 60):
        m = sim.measure(GRID, start + k)
        if m.active_power < -2_000.0:
            exporting.append(m.voltage)
        elif m.active_power > 2_000.0:
            importing.append(m.voltage)
    assert exporting and importing
    assert math.fsum(exporting) / len(exporting) > math.fsum(importing) / len(importing) + 0.5


# ------------------------------------------------------------------ factory configuration
@pytest.mark.parametrize("count", [MAX_CHANNELS, 16, 5, 1])
def test_default_channel_configs_validate_and_match_the_house(count: int) -> None:
    configs = default_channel_configs(count)
    check_channel_set(configs, count)
    expected = {
        0: ("Grid", "Grid", Role.GRID),
        1: ("Solar PV", "Solar PV", Role.PV),
        2: ("Battery", "Battery", Role.BATTERY),
        3: ("Kitchen", "Kitchen", Role.LOAD),
        4: ("Oven", "Kitchen", Role.LOAD),
        5: ("Heat pump", "Heat pump", Role.LOAD),
        6: ("EV charger", "EV charger", Role.LOAD),
        7: ("Washing machine", "Washing machine", Role.LOAD),
        8: ("Dishwasher", "Kitchen", Role.LOAD),
        9: ("Lighting", "Lighting", Role.LOAD),
        10: ("Fridge", "Fridge", Role.LOAD),
        11: ("Office", "Office", Role.LOAD),
        12: ("Living room", "Living room", Role.LOAD),
    }
    for cfg in configs:
        wired = expected.get(cfg.index)
        if wired is None:
            assert (cfg.label, cfg.groupLabel, cfg.role) == (
                f"Channel {cfg.index}",
                f"Group {cfg.index}",
                Role.LOAD,
            )
            assert not cfg.active
        else:
            assert (cfg.label, cfg.groupLabel, cfg.role) == wired
            assert cfg.active
    assert configs[0].ctSpecification.currentRating == 60.0
    if count > EV_CHARGER:
        assert configs[EV_CHARGER].ctSpecification.currentRating == 40.0
        assert configs[FRIDGE - 1].ctSpecification.currentRating == 30.0


@pytest.mark.parametrize("count", [0, MAX_CHANNELS + 1])
def test_default_channel_configs_rejects_impossible_counts(count: int) -> None:
    with pytest.raises(ValueError):
        default_channel_configs(count)
