"""Waveform capture by the driver on the emulated board, the capture states, and interrupt counting."""

from __future__ import annotations

import itertools
import math

import pytest

from homemeter.config.roles import Phase
from homemeter.meter import waveform as wf
from homemeter.meter.source import Measurement
from homemeter.meter.waveform import CaptureBusy, Waveform, WaveformCapture
from tests.unit.ade7953_rig import rig


def rms(xs: tuple[float, ...]) -> float:
    return math.sqrt(sum(x * x for x in xs) / len(xs))


@pytest.mark.parametrize("interrupt_line", [True, False])
def test_capture_of_a_multiplexed_channel_matches_its_load(interrupt_line: bool) -> None:
    meter, source, board = rig(channels=5, interrupt_line=interrupt_line)
    board.reference_loads[3] = Measurement(231.0, 6.0, 1108.8, 831.6, 1386.0)  # PF 0.8 lagging
    meter.simulate(10.0)
    source.arm_waveform(3)
    assert source.waveform.status() == ("armed", 3)
    meter.simulate(10.0)
    assert source.waveform.status() == ("complete", 3)
    got = source.waveform.take()
    assert got is not None and source.waveform.status() == ("idle", wf.NO_CHANNEL)
    line = meter.latest.channels[0].voltage  # channel B shares the voltage input of channel A
    assert rms(got.volts) == pytest.approx(line, rel=0.005)
    assert rms(got.amps) == pytest.approx(6.0, rel=0.005)
    power = sum(v * i for v, i in zip(got.volts, got.amps, strict=True)) / len(got.volts)
    assert power == pytest.approx(line * 6.0 * 0.8, rel=0.01)
    # Continuous sines: no jump between samples larger than a sine moves in one sample period.
    step = max(abs(b - a) for a, b in itertools.pairwise(got.volts))
    assert step < line * math.sqrt(2.0) * 2.0 * math.pi * 50.5 / wf.SAMPLE_RATE_HZ * 1.6
    # The meter went on reading: the capture only borrowed the sampling thread for ~80 ms.
    assert source.health().state == "running"


def test_capture_states_busy_error_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    capture = WaveformCapture()
    capture.arm(2)
    with pytest.raises(CaptureBusy, match="already in progress"):
        capture.arm(0)
    capture.run(1, lambda: pytest.fail("not the armed channel"))
    capture.run(2, lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    assert capture.status() == ("error", 2) and "division" in (capture.error or "")
    assert capture.take() is None
    capture.arm(0)  # after an error a new capture may start
    clock = [1000.0]
    monkeypatch.setattr(wf.time, "monotonic", lambda: clock[0])
    capture = WaveformCapture()
    capture.arm(4)
    clock[0] += wf.ARM_TIMEOUT_S + 1.0
    assert capture.status() == ("error", 4) and "not measured" in (capture.error or "")
    assert capture.wanted is None


def test_phase_shift_between_lines() -> None:
    shape = Waveform(1, 0, 0, int(Phase.L1), int(Phase.L3), (), (), ())
    assert shape.phase_shift_degrees == 120.0
    assert Waveform(1, 0, 0, int(Phase.L3), int(Phase.L2), (), (), ()).phase_shift_degrees == 120.0
    assert Waveform(1, 0, 0, int(Phase.L2), int(Phase.L3), (), (), ()).phase_shift_degrees == -120.0


def test_interrupt_counters_follow_windows_and_resets() -> None:
    meter, source, board = rig(channels=3)
    meter.simulate(20.0)
    counters = source.health().counters
    assert counters["cycEndInterrupts"] == counters["windows"] >= 95
    assert counters["totalInterrupts"] >= counters["cycEndInterrupts"]
    assert counters["totalHandledInterrupts"] >= counters["cycEndInterrupts"]
    assert counters["resetInterrupts"] == counters["zxInterrupts"] == counters["unhandledInterrupts"] == 0
    board.power_glitch()
    meter.simulate(5.0)
    counters = source.health().counters
    assert counters["resetInterrupts"] == counters["chipResets"] == 1
    # A raw register write changes the configuration checksum: the CRC interrupt is counted.
    source.write_register(0x381, 32, 4_000_000)
    meter.simulate(2.0)
    assert source.health().counters["crcInterrupts"] >= 1
