"""Register values to volts, amps and watt-hours (reference meter.md 4.8), board facts, calibration.

The formulas assume unity gain registers: the calibration registers scale what the chip accumulates
before it reaches a register, so they need no term here. A channel's `scalingFraction`, its reverse
flag and the split-phase doubling are the meter's (`meter/reading.py`), so they are not applied here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from homemeter.config.ade7953 import Board
from homemeter.config.channel import CtSpecification
from homemeter.config.hardware import Ade7953Calibration
from homemeter.meter.sources.ade7953 import registers as r
from homemeter.meter.sources.ade7953.frames import encode
from homemeter.meter.sources.ade7953.registers import Register

FULL_SCALE_RMS = 9_032_007  # VRMS / IRMS register at a full-scale input (0.5 V peak)
FULL_SCALE_INPUT = 0.35355  # V RMS at the ADC pins for a full-scale sine
INSTANT_FULL_SCALE = 6_500_000  # IA/IB/V waveform registers at +-0.5 V (a full-scale peak)
#: Waveform LSB per RMS LSB: a full-scale sine peaks at INSTANT_FULL_SCALE, its RMS reads FULL_SCALE_RMS.
INSTANT_PER_RMS_LSB = INSTANT_FULL_SCALE / (FULL_SCALE_RMS * math.sqrt(2.0))
ENERGY_RATE = 206_900  # energy LSB per second with both inputs at full scale
PERIOD_CLOCK = 223_750.0  # Hz: PERIOD counts this clock over one line cycle (datasheet Eq. 36)
UNITY_GAIN = 0x400000
LINECYC_RANGE = (10, 1000)  # half line cycles per window
#: One PHCALx LSB delays the current input by this long (modelled: 1/895 kHz, 0.02 deg at 50 Hz).
PHCAL_SECONDS_PER_LSB = 1.117e-6


@dataclass(frozen=True, slots=True)
class BoardProfile:
    """The analog front end: the voltage divider and which multiplexer input serves each channel."""

    divider_r1: float  # ohm, mains side
    divider_r2: float  # ohm, the ADC side
    mux_inputs: tuple[int, ...]  # multiplexer input of channel 1, 2, ...

    @property
    def ratio(self) -> float:
        return self.divider_r2 / (self.divider_r1 + self.divider_r2)

    @property
    def channels(self) -> int:
        return 1 + len(self.mux_inputs)

    @property
    def volts_per_lsb(self) -> float:
        return FULL_SCALE_INPUT / self.ratio / FULL_SCALE_RMS


BOARDS = MappingProxyType(
    {
        Board.V6_0: BoardProfile(153_000.0, 180.0, tuple(range(16))),
        Board.V6_1: BoardProfile(153_000.0, 180.0, (0, *range(2, 16))),  # Y1 is not populated
        Board.V5: BoardProfile(990_000.0, 1_000.0, tuple(range(16))),
    }
)


@dataclass(frozen=True, slots=True)
class ChannelScale:
    """Conversion constants of one channel's CT (its scaling fraction excluded: the meter's)."""

    amps_per_lsb: float
    wh_per_lsb: float  # also VArh and VAh per LSB
    rated_current: float

    @classmethod
    def of(cls, ct: CtSpecification, board: BoardProfile) -> ChannelScale:
        if ct.voltageOutput <= 0.0 or ct.currentRating <= 0.0:
            return cls(0.0, 0.0, ct.currentRating)  # the device divides by zero here; we read 0
        full_scale_current = ct.currentRating * FULL_SCALE_INPUT / ct.voltageOutput
        full_scale_voltage = FULL_SCALE_INPUT / board.ratio
        return cls(
            amps_per_lsb=full_scale_current / FULL_SCALE_RMS,
            wh_per_lsb=full_scale_current * full_scale_voltage / ENERGY_RATE / 3600.0,
            rated_current=ct.currentRating,
        )


def frequency_of(period: int) -> float:
    """Line frequency from the PERIOD register (Eq. 36: one count more than the register)."""
    return PERIOD_CLOCK / (period + 1)


def line_cycles(sample_time_ms: int, frequency: float) -> int:
    """LINECYC for a sample time: half cycles at 50 Hz, or 60 Hz when the line is within 2 Hz of it."""
    nominal = 60.0 if abs(frequency - 60.0) < 2.0 else 50.0
    half_cycles = int(sample_time_ms * nominal * 2 / 1000)
    return min(max(half_cycles, LINECYC_RANGE[0]), LINECYC_RANGE[1])


def angle_degrees(raw: int, frequency: float) -> float:
    """ANGLE_x counts the PERIOD clock from the voltage zero crossing to the current's."""
    return raw * 360.0 * frequency / PERIOD_CLOCK


#: Calibration field -> the register it is written to. bVarOs goes to BVAROS: the device writes it
#: to BWATTOS by mistake (reference meter.md 8.2), overwriting the active power offset.
CALIBRATION_REGISTERS: MappingProxyType[str, Register] = MappingProxyType(
    {
        "aVGain": r.AVGAIN,
        "aIGain": r.AIGAIN,
        "bIGain": r.BIGAIN,
        "aIRmsOs": r.AIRMSOS,
        "bIRmsOs": r.BIRMSOS,
        "aWGain": r.AWGAIN,
        "bWGain": r.BWGAIN,
        "aWattOs": r.AWATTOS,
        "bWattOs": r.BWATTOS,
        "aVarGain": r.AVARGAIN,
        "bVarGain": r.BVARGAIN,
        "aVarOs": r.AVAROS,
        "bVarOs": r.BVAROS,
        "aVaGain": r.AVAGAIN,
        "bVaGain": r.BVAGAIN,
        "aVaOs": r.AVAOS,
        "bVaOs": r.BVAOS,
        "phCalA": r.PHCALA,
        "phCalB": r.PHCALB,
    }
)


def calibration_writes(cal: Ade7953Calibration) -> list[tuple[Register, int]]:
    """(register, value) for every calibration field; ValueError names a value the chip cannot hold."""
    writes = []
    for field, reg in CALIBRATION_REGISTERS.items():
        value = getattr(cal, field)
        try:
            encode(reg, value)
        except ValueError as err:
            raise ValueError(f"{field}: {err}") from err
        writes.append((reg, value))
    return writes


@dataclass(frozen=True, slots=True)
class ReferencePoint:
    """One calibration point: what a reference meter shows and what homemeter read at that moment.

    Both in the channel's own terms (before the scaling fraction). `power_factor` > 0 is lagging.
    """

    voltage: float
    current: float
    power_factor: float
    measured_voltage: float
    measured_current: float
    measured_active_power: float


def calibrate(
    cal: Ade7953Calibration, channel_b: bool, point: ReferencePoint, frequency: float = 50.0
) -> Ade7953Calibration:
    """New calibration registers that make the chip read `point`'s reference values.

    The usual two steps: at PF >= 0.99 the voltage, current and active power gains; then at a
    lagging PF (0.5 is best) the phase calibration, which is what moves the active power there.
    Channel B's registers serve every multiplexed channel (there is no per-channel chip calibration;
    a single CT is trimmed with its scaling fraction).
    """
    if min(point.measured_voltage, point.measured_current, point.voltage, point.current) <= 0.0:
        raise ValueError("calibration needs a load: voltage and current must be above 0")
    x = "b" if channel_b else "a"
    changes: dict[str, int] = {}
    measured_pf = point.measured_active_power / (point.measured_voltage * point.measured_current)
    if point.power_factor >= 0.99:
        v_ratio = point.voltage / point.measured_voltage
        i_ratio = point.current / point.measured_current
        changes["aVGain"] = round(cal.aVGain * v_ratio)
        changes[f"{x}IGain"] = round(getattr(cal, f"{x}IGain") * i_ratio)
        # What the corrected V and I leave unexplained in the active power is the watt gain's.
        changes[f"{x}WGain"] = round(getattr(cal, f"{x}WGain") * point.power_factor / measured_pf)
    else:
        lag_true = math.degrees(math.acos(min(point.power_factor, 1.0)))
        lag_measured = math.degrees(math.acos(min(max(measured_pf, -1.0), 1.0)))
        # The chip delays the current by PHCAL: a current that reads too late needs less delay.
        per_lsb = 360.0 * frequency * PHCAL_SECONDS_PER_LSB
        field = "phCalB" if channel_b else "phCalA"
        changes[field] = getattr(cal, field) - round((lag_measured - lag_true) / per_lsb)
    return cal.model_copy(update=changes)
