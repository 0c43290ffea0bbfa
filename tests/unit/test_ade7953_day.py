"""A simulated day through the ADE7953 driver on the emulated board: readings and energies.

Every reading must match what the household drew in the window the chip measured (0.5 %, or one
register LSB for small loads), and the energy the meter accounts from the driver's readings must
match the energy the same accounting gives from the household's true draw (0.1 %).

Speed: each window costs ~36 verified SPI frames through driver and emulator (~0.25 ms), so the
device cadence (200 ms, 432 000 windows) would take minutes for a day. The whole day therefore runs
at a 5 s sample time (LINECYC 500, a valid configuration, 17 280 windows, ~10 s): the conversion,
calibration and accumulation paths are the same, only the window is longer. The device cadence is
checked over a busy quarter of an hour (4 500 windows) with the same assertions.
"""

from __future__ import annotations

import pytest

from homemeter.config.app import AppConfig
from homemeter.config.channel import CtSpecification
from homemeter.meter.sampler import Meter
from homemeter.meter.sources.ade7953 import Ade7953Source
from homemeter.meter.sources.ade7953.conversion import ChannelScale
from tests.unit.ade7953_rig import NOON, Recorder, rig
from tests.unit.test_ade7953_driver import V6, within

MIDNIGHT = NOON - 12 * 3600
EVENING = NOON + 6.5 * 3600  # cooking, the EV charging, the battery discharging


def run(start: float, seconds: float, sample_time_ms: int) -> tuple[Meter, Ade7953Source, Recorder]:
    meter, source, board = rig(start=start)
    meter.set_sample_time(sample_time_ms)
    source.configure(AppConfig(channels=meter.channels, sampleTime=sample_time_ms))
    recorder = Recorder(source, board, meter)
    meter.simulate(seconds)
    return meter, source, recorder


def check(meter: Meter, source: Ade7953Source, rec: Recorder, window_s: float, counters: int) -> None:
    ratings = {c.index: c.ctSpecification.currentRating for c in meter.channels}
    hours = (meter.latest.taken_at - meter.clock.start) / 3600
    assert all(truth is not None for _, _, truth in rec.readings), "a reading from a mixed window"
    bad = [(ch, m, t) for ch, m, t in rec.readings if t and not within(m, t, ratings[ch], window_s)]
    assert bad == []
    assert meter.failures == 2  # the partial first window (channel 0 and the first mux read) only
    assert source.health().counters["initialisations"] == 1
    checked = 0
    for c in meter.latest.channels:
        driver, truth = rec.driver[c.index].totals(), rec.truth[c.index].totals()
        assert driver.as_tuple() == pytest.approx(c.energy.as_tuple(), rel=1e-9)  # the meter's
        # 0.1 %, or for a small load one power LSB (an energy register's resolution) all along.
        lsb_wh = ChannelScale.of(c_config(meter, c.index), V6).wh_per_lsb * 3600 / window_s * hours
        for got, want in zip(driver.as_tuple(), truth.as_tuple(), strict=True):
            assert got == pytest.approx(want, rel=1e-3, abs=lsb_wh), c.index
            checked += want > 1.0
    assert checked >= counters  # PV, battery, grid and appliances: not a comparison of zeros


def c_config(meter: Meter, index: int) -> CtSpecification:
    return meter.channels[index].ctSpecification


def test_a_whole_day_at_a_five_second_sample_time() -> None:
    meter, source, rec = run(MIDNIGHT, 86_400.0, 5_000)
    assert source.health().details["lineCycles"] == 500
    check(meter, source, rec, 5.0, counters=30)
    pv, battery = meter.latest.channels[1], meter.latest.channels[2]
    assert pv.active_energy_imported > 10_000  # a real summer day: the battery charged and discharged
    assert battery.active_energy_imported > 1_000 and battery.active_energy_exported > 1_000


def test_a_busy_quarter_hour_at_device_cadence() -> None:
    meter, source, rec = run(EVENING, 900.0, 200)
    assert source.health().details["lineCycles"] == 20
    check(meter, source, rec, 0.2, counters=15)
