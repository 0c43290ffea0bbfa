"""The ADE7953 driver against the emulated board: set-up, conversion, calibration, glitches, paths."""

from __future__ import annotations

import math

import pytest

from homemeter.config.ade7953 import Board
from homemeter.config.channel import CtSpecification
from homemeter.config.hardware import UNITY_GAIN, Ade7953Calibration
from homemeter.config.roles import Phase
from homemeter.errors import ConfigRejected
from homemeter.meter.source import Measurement
from homemeter.meter.sources.ade7953 import registers as r
from homemeter.meter.sources.ade7953.bus import Glitch
from homemeter.meter.sources.ade7953.chip import Chip
from homemeter.meter.sources.ade7953.conversion import (
    BOARDS,
    ChannelScale,
    ReferencePoint,
    calibrate,
    frequency_of,
    line_cycles,
)
from homemeter.meter.sources.ade7953.emulator import EmulatedBoard, Wiring
from homemeter.meter.sources.ade7953.source import Ade7953Source
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs
from tests.unit.ade7953_rig import NOON, SEED, Recorder, rig

V6 = BOARDS[Board.V6_0]
PV = 1  # the PV inverter: power factor 1, a good gain calibration load


def within(
    m: Measurement, truth: Measurement, rating: float = 30.0, window_s: float = 0.2, angle_lsb: bool = False
) -> bool:
    """Equal within 0.5 %, or within the register's resolution: one energy LSB of power (0.23 W
    for a 30 A CT at 200 ms; x1.5 for rounding on both sides) or, on the angle path, one ANGLE LSB
    (0.08 deg: Q within S x 0.0014). Below the chip's no-load level (1/20000 of full scale, 0.48 W
    for 30 A) a power of 0 is right: the chip does not accumulate it."""
    scale = ChannelScale.of(CtSpecification(currentRating=rating), V6)
    noload = scale.wh_per_lsb * 3600 * 206_900 / 20_000
    lsb = 1.5 * scale.wh_per_lsb * 3600 / window_s
    q_lsb = lsb + (truth.apparent_power * math.sin(math.radians(0.081)) if angle_lsb else 0.0)
    pairs = (
        (m.active_power, truth.active_power, lsb),
        (m.reactive_power, truth.reactive_power, q_lsb),
        (m.apparent_power, truth.apparent_power, lsb),
    )
    return abs(m.voltage - truth.voltage) <= 0.005 * truth.voltage and all(
        abs(got - want) <= 0.005 * abs(want) + allowance or (got == 0.0 and abs(want) < noload)
        for got, want, allowance in pairs
    )


class Tap:
    """Between driver and board: records every frame and line change, in order."""

    def __init__(self, board: EmulatedBoard) -> None:
        self.board = board
        self.has_interrupt = board.has_interrupt
        self.log: list[tuple[str, object]] = []

    def transfer(self, frame: bytes) -> bytes:
        self.log.append(("spi", frame))
        return self.board.transfer(frame)

    def select_input(self, number: int) -> None:
        self.log.append(("mux", number))
        self.board.select_input(number)

    def set_reset(self, asserted: bool) -> None:
        self.log.append(("reset", asserted))
        self.board.set_reset(asserted)

    def wait_interrupt(self, timeout: float) -> bool:
        return self.board.wait_interrupt(timeout)

    def close(self) -> None:
        self.board.close()

    def writes(self) -> list[tuple[int, int]]:
        return [
            (f[0] << 8 | f[1], int.from_bytes(f[3:], "big"))
            for kind, f in self.log
            if kind == "spi" and isinstance(f, bytes) and f[2] == 0x00
        ]


def test_scale_constants_are_the_references_figures() -> None:
    ct = CtSpecification(currentRating=30.0, voltageOutput=0.333)
    scale = ChannelScale.of(ct, V6)
    assert V6.volts_per_lsb == pytest.approx(3.3312e-5, rel=2e-4)
    assert BOARDS[Board.V5].volts_per_lsb == pytest.approx(3.8792e-5, rel=2e-4)
    assert scale.amps_per_lsb == pytest.approx(3.5265e-6, rel=2e-4)
    assert scale.wh_per_lsb == pytest.approx(1.2866e-5, rel=2e-4)
    assert scale.wh_per_lsb * 3600 / 0.2 == pytest.approx(0.2316, rel=2e-3)  # W per LSB at 200 ms
    assert frequency_of(4474) == pytest.approx(50.0, abs=1e-9)
    assert (line_cycles(200, 50.02), line_cycles(200, 59.9), line_cycles(60_000, 50.0)) == (20, 24, 1000)
    assert ChannelScale.of(CtSpecification(voltageOutput=0.0), V6).wh_per_lsb == 0.0  # no division by 0


def test_initialisation_sequence() -> None:
    house = HouseholdSimulator(seed=SEED, channel_count=17)
    configs = default_channel_configs(17)
    board = EmulatedBoard(
        house,
        V6,
        Wiring({k - 1: k for k in range(1, 17)}, {c.index: c.ctSpecification for c in configs}),
    )
    tap = Tap(board)
    source = Ade7953Source(Chip(tap, tap, board, "tap"), V6, 17, sync=board.run_until)
    source.advance(NOON)

    assert tap.log[:2] == [("reset", True), ("reset", False)]
    assert tap.log[2] == ("spi", b"\x03\x03\x80\x00\x00\x00\x00")  # AP_NOLOAD: is the chip there?
    writes = tap.writes()
    frames = [f for kind, f in tap.log if kind == "spi"]
    unlock = frames.index(b"\x00\xfe\x00\xad")
    assert frames[unlock + 1] == b"\x01\x20\x00\x00\x30"  # 0x120 right after the key, nothing between
    fixed = [(0x007, 0), (0x008, 0), (0x009, 0), (0x001, 0), (0x303, 51_251), (0x304, 51_251)]
    fixed += [(0x305, 51_251), (0x004, 0x3F), (0x102, 0xA10C)]
    assert writes[2 : 2 + len(fixed)] == fixed
    calibration = dict(writes[2 + len(fixed) : 2 + len(fixed) + 19])
    assert calibration[0x381] == 4_050_000 and calibration[0x380] == calibration[0x38C] == 4_300_000
    assert 0x396 in calibration  # bVarOs to BVAROS, not over BWATTOS as the device does
    assert [w for w in writes if w[0] == 0x395] == [(0x395, 0)]
    assert writes[-2:] == [(0x101, 20), (0x32C, r.IRQ_ENABLED)]
    chip = Chip(board, board, board, "check")
    assert (chip.read(r.LCYCMODE), chip.read(r.CONFIG), chip.read(r.LINECYC)) == (0x3F, 0xA10C, 20)
    assert source.health().state == "running" and source.health().details["siliconVersion"] == 2


def test_readings_match_the_household_and_the_first_window_is_skipped() -> None:
    meter, source, board = rig()
    rec = Recorder(source, board)
    meter.simulate(120.0)
    assert meter.failures == 2  # the partial first window, for channel 0 and the first mux read
    assert source.health().counters["partialWindows"] == 2
    ratings = {c.index: c.ctSpecification.currentRating for c in meter.channels}
    assert len(rec.readings) > 800
    for channel, m, truth in rec.readings:
        assert truth is not None, "a multiplexed reading came from a window spanning a switch"
        assert within(m, truth, ratings[channel]), (channel, m, truth)


def test_calibration_registers_apply_in_the_chip_and_the_helper_recovers_the_board_error() -> None:
    meter, source, board = rig()
    rec = Recorder(source, board)
    unity = Ade7953Calibration(aVGain=UNITY_GAIN, aIGain=UNITY_GAIN, bIGain=UNITY_GAIN)
    config = meter_config(meter, unity)
    source.configure(config)
    meter.simulate(30.0)
    assert source.read_register(0x381, 32, False) == UNITY_GAIN
    _, m, truth = next(x for x in reversed(rec.readings) if x[0] == PV and x[2] is not None)
    assert truth is not None
    # Without the factory calibration the board's own error shows: V 3.6 % high, I 2.5 % low.
    assert m.voltage / truth.voltage == pytest.approx(4_194_304 / 4_050_000, rel=1e-3)
    point = ReferencePoint(
        voltage=truth.voltage,
        current=truth.current,
        power_factor=1.0,
        measured_voltage=m.voltage,
        measured_current=m.current,
        measured_active_power=m.active_power,
    )
    fixed = calibrate(unity, channel_b=True, point=point)
    assert fixed.aVGain == pytest.approx(4_050_000, rel=1e-3)
    assert fixed.bIGain == pytest.approx(4_300_000, rel=2e-3)
    assert fixed.bWGain == pytest.approx(UNITY_GAIN, rel=2e-3)
    source.configure(meter_config(meter, fixed))
    rec.readings.clear()
    meter.simulate(30.0)
    pv = [(m, t) for ch, m, t in rec.readings if ch == PV and t is not None]
    assert pv and all(within(m, t) for m, t in pv)


def test_phase_calibration_maths() -> None:
    # A load at PF 0.5 (60 deg) that reads 1 degree late: PHCAL goes down by 1 deg / 0.0201 deg.
    lag = math.radians(61.0)
    point = ReferencePoint(230.0, 10.0, 0.5, 230.0, 10.0, 2300.0 * math.cos(lag))
    assert calibrate(Ade7953Calibration(), channel_b=False, point=point).phCalA == -50


def test_a_calibration_the_chip_cannot_hold_is_refused() -> None:
    meter, source, _ = rig()
    with pytest.raises(ConfigRejected, match="phCalA"):
        source.configure(meter_config(meter, Ade7953Calibration(phCalA=600)))
    with pytest.raises(ConfigRejected, match="aWattOs"):
        source.configure(meter_config(meter, Ade7953Calibration(aWattOs=1 << 23)))


def test_corrupted_frames_are_retried_and_never_taken_as_data() -> None:
    meter, source, board = rig()
    rec = Recorder(source, board)
    board.faults.corrupt = 0.02  # one frame in 50 has a bit flipped, on MOSI or MISO
    meter.simulate(120.0)
    health = source.health()
    assert health.counters["glitches"] > 50
    assert health.state == "running"
    ratings = {c.index: c.ctSpecification.currentRating for c in meter.channels}
    assert all(within(m, t, ratings[ch]) for ch, m, t in rec.readings if t is not None)
    assert meter.failures < 0.05 * meter.readings


def test_rms_witness_discards_a_reading_energy_and_rms_disagree_on() -> None:
    meter, source, board = rig()
    rec = Recorder(source, board)
    meter.simulate(10.0)
    # BVAGAIN doubled: channel B's apparent energy doubles, its IRMS does not.
    source.write_register(r.BVAGAIN.address, 32, 2 * UNITY_GAIN)
    rec.readings.clear()
    meter.simulate(20.0)
    assert source.health().counters["witnessDiscards"] > 5
    assert [ch for ch, _, _ in rec.readings if ch in (PV, 2)] == []  # loaded mux channels: discarded
    assert [ch for ch, _, _ in rec.readings if ch == 0]  # channel A goes on


def test_multiplexed_channel_is_not_read_while_settling() -> None:
    meter, source, _ = rig()
    meter.simulate(2.0)
    source.select(5)
    source.advance(meter.clock.start + 2.2)
    with pytest.raises(Glitch, match="settling"):
        source.measure(5, meter.clock.start + 2.2)


def test_angle_path_for_a_channel_on_another_line() -> None:
    configs = default_channel_configs(17)
    configs[PV] = configs[PV].model_copy(update={"phase": Phase.L2})
    meter, source, board = rig(configs=configs)
    board._wiring = Wiring(  # the PV inverter is wired to L2
        board._wiring.channel_of_input, board._wiring.cts, lines={PV: Phase.L2}
    )
    source.configure(meter_config(meter, Ade7953Calibration()))
    rec = Recorder(source, board)
    meter.simulate(60.0)
    pv = [(m, t) for ch, m, t in rec.readings if ch == PV and t is not None]
    assert pv and all(within(m, t, angle_lsb=True) for m, t in pv)


def test_without_an_irq_line_the_status_is_polled() -> None:
    meter, source, board = rig(interrupt_line=False)
    rec = Recorder(source, board)
    meter.simulate(60.0)
    ratings = {c.index: c.ctSpecification.currentRating for c in meter.channels}
    assert meter.readings > 400 and meter.failures == 2
    assert all(within(m, t, ratings[ch]) for ch, m, t in rec.readings if t is not None)


def meter_config(meter: object, calibration: Ade7953Calibration) -> object:
    from homemeter.config.app import AppConfig

    channels = meter.channels  # type: ignore[attr-defined]
    return AppConfig(channels=channels, ade7953=calibration)
