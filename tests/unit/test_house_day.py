"""A simulated day of the default house measured by the meter: energy balances, PV and battery work."""

from __future__ import annotations

import pytest

from homemeter.config.roles import Role
from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.snapshot import MeterSnapshot
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs

MIDNIGHT = 1_782_864_000.0  # 2026-07-01T00:00:00Z, a summer day


@pytest.fixture(scope="module")
def day() -> MeterSnapshot:
    meter = Meter(
        HouseholdSimulator(seed=7),
        default_channel_configs(17),
        {},
        clock=MeterClock(start=MIDNIGHT),
    )
    meter.simulate(86_400.0)
    return meter.latest


def test_grid_energy_equals_balance_of_branches(day: MeterSnapshot) -> None:
    grid = day.aggregate(Role.GRID)
    loads = day.aggregate(Role.LOAD)
    pv = day.aggregate(Role.PV)
    battery = day.aggregate(Role.BATTERY)
    net_grid = grid.active_energy_imported - grid.active_energy_exported
    net_battery = battery.active_energy_imported - battery.active_energy_exported
    balance = loads.active_energy_imported - pv.active_energy_imported - net_battery
    # Branches are sampled every few seconds (zero-order hold), the grid every 200 ms.
    assert net_grid == pytest.approx(balance, abs=0.02 * loads.active_energy_imported)


def test_a_plausible_household_day(day: MeterSnapshot) -> None:
    loads = day.aggregate(Role.LOAD).active_energy_imported / 1000
    pv = day.aggregate(Role.PV).active_energy_imported / 1000
    battery = day.aggregate(Role.BATTERY)
    assert 5 < loads < 60, loads
    assert 10 < pv < 50, pv
    assert battery.active_energy_exported > 1000, "the battery charged from PV surplus"
    assert battery.active_energy_imported > 1000, "and discharged later"
    assert all(c.active_energy_exported == 0 for c in day.channels if c.role.clamps_negative)
    listed = [c.index for c in day.with_readings()]
    assert listed == [c.index for c in day.channels if c.active]
