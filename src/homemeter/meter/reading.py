"""What the device does to one raw measurement before it counts (reference meter.md 2.3).

A pure function so the rules can be tested (with hypothesis) without a sampler or a source.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase
from homemeter.meter.source import Measurement

# Range validation of the device: outside these a reading is discarded or zeroed.
VOLTAGE_RANGE = (50.0, 300.0)
CURRENT_LIMIT = 300.0  # A
POWER_LIMIT = 100_000.0  # W, VAr, VA
LOW_PF = 0.10  # |PF| below this: treated as no load, the whole reading zeroed
# The ADE7953 no-load threshold is ~1/20000 of full-scale power: about 0.5 W with a 30 A CT.
NOLOAD_W_PER_AMP_RATING = 0.5 / 30.0
DISCARD_GATE = 0.001  # x rated current: an invalid reading above it is discarded, below it zeroed


class ProcessedReading(NamedTuple):
    """A reading that passed the pipeline; powers signed per the channel's role and reverse flag."""

    voltage: float
    current: float
    active_power: float
    reactive_power: float
    apparent_power: float
    power_factor: float


def _zeroed(voltage: float) -> ProcessedReading:
    return ProcessedReading(voltage, 0.0, 0.0, 0.0, 0.0, 0.0)


def process(m: Measurement, cfg: ChannelConfig) -> ProcessedReading | None:
    """Apply sign, no-load, range and role rules; None means "discard this reading"."""
    multiplier = 2.0 if cfg.phase is Phase.SPLIT else 1.0
    flip = -1.0 if cfg.reverse else 1.0
    scale = 1.0 + cfg.ctSpecification.scalingFraction
    rating = cfg.ctSpecification.currentRating
    v = m.voltage * multiplier
    p = m.active_power * flip * multiplier * scale
    q = m.reactive_power * flip * multiplier * scale
    s = abs(m.apparent_power * multiplier * scale)

    # Below the chip's no-load threshold the energy registers read 0; a window without active energy
    # has PF 0, and |PF| < 0.10 zeroes the whole reading: so both cases are "no load".
    noload = NOLOAD_W_PER_AMP_RATING * rating
    if abs(p) < noload or s < noload:
        return _zeroed(v)
    if abs(q) < noload:
        q = 0.0
    # PF carries sign(P) * sign(Q); on both the energy-register and the angle path this is the same.
    pf = (p / s) * (1.0 if q >= 0.0 else -1.0)
    if abs(pf) < LOW_PF:
        return _zeroed(v)
    if 1.0 < abs(pf) < 1.10:
        pf = math.copysign(1.0, pf)
        p = math.copysign(s, p)
        q = 0.0
    reading = ProcessedReading(v, s / v if v > 0.0 else 0.0, p, q, s, pf)
    if not _in_range(m.voltage, reading):
        if reading.current >= DISCARD_GATE * rating:
            return None
        return _zeroed(v)
    if p < 0.0 and cfg.role.clamps_negative:
        return _zeroed(v)
    return reading


def _in_range(line_voltage: float, r: ProcessedReading) -> bool:
    """The device's plausibility limits (voltage checked before the split-phase doubling)."""
    return (
        VOLTAGE_RANGE[0] <= line_voltage <= VOLTAGE_RANGE[1]
        and r.current <= CURRENT_LIMIT
        and max(abs(r.active_power), abs(r.reactive_power), r.apparent_power) <= POWER_LIMIT
        and abs(r.power_factor) <= 1.0
        and math.isfinite(r.current + r.active_power + r.reactive_power + r.apparent_power)
    )


def process_remote(m: Measurement, power_factor: float | None, cfg: ChannelConfig) -> ProcessedReading | None:
    """A remote meter's values: already measured, scaled and range-checked by that meter.

    Only what is homemeter's to decide applies: the channel's `reverse`, the role clamp (a load or PV
    channel never runs backwards) and the PF sign convention (sign(P) * sign(Q), whatever the remote
    meter's: an Eastron meter signs PF by the current's direction). CT specifications and the
    split-phase doubling do not apply: the remote meter did its own conversion. None: not finite.
    """
    flip = -1.0 if cfg.reverse else 1.0
    p = m.active_power * flip
    q = m.reactive_power * flip
    s = abs(m.apparent_power)
    if not math.isfinite(m.voltage + m.current + p + q + s):
        return None
    if p < 0.0 and cfg.role.clamps_negative:
        return _zeroed(m.voltage)
    magnitude = abs(power_factor) if power_factor is not None and math.isfinite(power_factor) else None
    if magnitude is None:
        magnitude = min(abs(p) / s, 1.0) if s > 0.0 else 0.0
    sign = (1.0 if p >= 0.0 else -1.0) * (1.0 if q >= 0.0 else -1.0)
    pf = min(magnitude, 1.0) * sign if p != 0.0 else 0.0
    return ProcessedReading(m.voltage, abs(m.current), p, q, s, pf)
