"""Faults on the emulated board: the driver reports them, recovers, and never hangs or invents data.

Waits run on the emulator's clock, so a hang would show as the chip's time running away from the
meter's; each test also bounds the real time a faulty stretch takes.
"""

from __future__ import annotations

import time

import pytest

from homemeter.meter.sources.ade7953 import registers as r
from homemeter.meter.sources.ade7953.bus import BusError, Glitch
from homemeter.meter.sources.ade7953.chip import Chip
from tests.unit.ade7953_rig import Recorder, rig
from tests.unit.test_ade7953_driver import PV, within


def ratings(meter: object) -> dict[int, float]:
    return {c.index: c.ctSpecification.currentRating for c in meter.channels}  # type: ignore[attr-defined]


def test_chip_reset_mid_run_is_detected_and_set_up_again_without_losing_energy() -> None:
    meter, source, board = rig()
    rec = Recorder(source, board, meter)
    meter.simulate(60.0)
    before = meter.readings
    board.power_glitch()  # every register back to its power-on default, RESET pending
    meter.simulate(60.0)
    health = source.health()
    assert health.counters["chipResets"] == 1 and health.counters["initialisations"] == 2
    assert health.state == "running" and health.last_error is None
    assert meter.readings - before > 400  # readings resumed
    assert meter.failures <= 6  # the partial windows after each set-up, nothing else
    # The chip holds the configuration again, and no reading came from its default state.
    chip = Chip(board, board, board, "check")
    assert (chip.read(r.LCYCMODE), chip.read(r.LINECYC), chip.read(r.AVGAIN)) == (0x3F, 20, 4_050_000)
    assert all(within(m, t, ratings(meter)[ch]) for ch, m, t in rec.readings if t is not None)
    # Energy: the window lost to the reset is covered by the next reading, never counted twice.
    for c in meter.latest.channels:
        assert rec.driver[c.index].totals().as_tuple() == pytest.approx(c.energy.as_tuple(), rel=1e-9)
        assert rec.driver[c.index].apparent == pytest.approx(rec.truth[c.index].apparent, rel=1e-3, abs=0.01)


def test_stuck_bus_gives_a_clear_error_and_status_not_a_hang() -> None:
    meter, source, board = rig()
    meter.simulate(30.0)
    energy = meter.latest.channels[PV].active_energy_imported
    board.faults.stuck = 0xFF  # MISO held high: nothing answers
    started = time.monotonic()
    meter.simulate(30.0)
    assert time.monotonic() - started < 5.0
    assert board.monotonic() - meter.latest.taken_at < 2.0  # no wait ran past the meter's time
    health = source.health()
    assert (health.state, health.ok) == ("unreachable", False)
    assert "does not answer" in (health.last_error or "") and "stuck" in (health.last_error or "")
    with pytest.raises(BusError, match="does not answer"):
        source.advance(meter.latest.taken_at + 0.2)
        source.measure(0, meter.latest.taken_at + 0.2)
    assert meter.latest.channels[PV].active_energy_imported == energy  # nothing invented while stuck
    # Set-up is retried with a growing delay, not on every window.
    assert health.counters["initialisations"] <= 7

    board.faults.stuck = None
    meter.simulate(60.0)
    health = source.health()
    assert (health.state, health.last_error) == ("running", None)
    # The first reading after recovery covers the gap (90 s at ~1.5 kW): nothing lost, nothing twice.
    pv = meter.latest.channels[PV]
    assert pv.active_energy_imported - energy == pytest.approx(pv.active_power * 90.0 / 3600, rel=0.05)


def test_failing_transfers_name_the_device() -> None:
    meter, source, board = rig()
    meter.simulate(5.0)
    board.faults.io_error = True
    meter.simulate(5.0)
    assert source.health().last_error == "SPI transfer on the emulated board failed: Input/output error"
    assert source.health().state == "unreachable"


def test_no_line_cycles_is_reported_within_the_bounded_wait() -> None:
    meter, source, board = rig()
    meter.simulate(5.0)
    board.faults.no_mains = True
    failures = meter.failures
    started = time.monotonic()
    meter.simulate(20.0)
    assert time.monotonic() - started < 5.0
    health = source.health()
    assert "no line-cycle interrupt" in (health.last_error or "") and health.state != "running"
    assert meter.failures - failures > 50  # every reading of the stretch failed, none invented
    # A wait ends one window + 1 s after it started; set-ups (0.4 s each) back off: 0, 1, 2, 5 s.
    assert board.monotonic() - meter.latest.taken_at < 5.0
    with pytest.raises((Glitch, BusError)):
        source.measure(0, meter.latest.taken_at)
    board.faults.no_mains = False
    meter.simulate(20.0)
    assert source.health().state == "running"
