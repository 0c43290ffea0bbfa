"""Immutable snapshots: the only thing consumers (API, Modbus, MQTT, InfluxDB, UI) ever read.

Only the meter builds them; what each value means is defined once in `quantities.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from homemeter.config.roles import AGGREGATE_ROLES, Phase, Role
from homemeter.meter.quantities import ENERGY_ATTRS

# A reading counts only with a plausible wall-clock time (2001..2100), as on the device.
VALID_TIME_MS = (1_000_000_000_000, 4_102_444_800_000)


def round_half_away(value: float, decimals: int) -> float:
    """C `round()` semantics the device uses (not Python's banker's rounding); NaN/inf become 0."""
    if not math.isfinite(value):
        return 0.0
    scale = 10.0**decimals
    return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value) + 0.0


@dataclass(frozen=True, slots=True)
class EnergyTotals:
    """Cumulative counters of one channel (Wh, VArh, VAh); they only ever grow between resets."""

    active_energy_imported: float = 0.0
    active_energy_exported: float = 0.0
    reactive_energy_imported: float = 0.0
    reactive_energy_exported: float = 0.0
    apparent_energy: float = 0.0

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (
            self.active_energy_imported,
            self.active_energy_exported,
            self.reactive_energy_imported,
            self.reactive_energy_exported,
            self.apparent_energy,
        )


@dataclass(frozen=True, slots=True)
class ChannelReading:
    """One channel in a snapshot: its identity (from the configuration) and its latest values."""

    index: int
    label: str
    phase: Phase
    group_label: str
    role: Role
    active: bool
    voltage: float
    current: float
    active_power: float
    apparent_power: float
    reactive_power: float
    power_factor: float
    active_energy_imported: float
    active_energy_exported: float
    reactive_energy_imported: float
    reactive_energy_exported: float
    apparent_energy: float
    last_reading_ms: int | None  # wall-clock ms of the last accepted reading; None = never read

    @property
    def has_reading(self) -> bool:
        """Active with a plausibly timestamped reading: what meter-values lists."""
        t = self.last_reading_ms
        return self.active and t is not None and VALID_TIME_MS[0] <= t <= VALID_TIME_MS[1]

    @property
    def energy(self) -> EnergyTotals:
        return EnergyTotals(*(getattr(self, a) for a in ENERGY_ATTRS))


@dataclass(frozen=True, slots=True)
class RoleAggregate:
    """Sums over the active channels of one role; PF = sum(P) / sum(S), 0 when sum(S) = 0."""

    role: Role
    active_power: float
    reactive_power: float
    apparent_power: float
    power_factor: float
    active_energy_imported: float
    active_energy_exported: float
    reactive_energy_imported: float
    reactive_energy_exported: float
    apparent_energy: float

    @classmethod
    def of(cls, role: Role, channels: tuple[ChannelReading, ...]) -> RoleAggregate:
        members = [c for c in channels if c.active and c.role is role]
        p = math.fsum(c.active_power for c in members)
        s = math.fsum(c.apparent_power for c in members)
        return cls(
            role,
            p,
            math.fsum(c.reactive_power for c in members),
            s,
            p / s if s else 0.0,
            *(math.fsum(getattr(c, a) for c in members) for a in ENERGY_ATTRS),
        )


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """Everything the meter knows at one instant. Built once, read by every consumer."""

    seq: int  # increases by one per published snapshot
    taken_at: float  # epoch seconds on the meter's clock (simulated time under --speed)
    uptime_ms: int  # meter clock since start
    voltage: float  # channel 0 RMS voltage, V
    grid_frequency: float  # Hz, filtered
    channels: tuple[ChannelReading, ...]
    aggregates: tuple[RoleAggregate, ...]  # in AGGREGATE_ROLES order
    readings: int = 0  # accepted readings since start (the API's readingCount)
    failures: int = 0  # discarded readings since start (readingCountFailure)
    late_windows: int = 0  # windows processed over one window late since start (the loop was held up)
    skipped_windows: int = 0  # windows never processed since start (skipped after a stall)

    def aggregate(self, role: Role) -> RoleAggregate:
        return self.aggregates[AGGREGATE_ROLES.index(role)]

    def with_readings(self) -> Iterator[ChannelReading]:
        """Channels that meter-values lists: active and with a valid reading."""
        return (c for c in self.channels if c.has_reading)
