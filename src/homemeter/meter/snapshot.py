"""Immutable snapshots: the only thing consumers (API, Modbus, MQTT, InfluxDB, UI) ever read.

Only the meter builds them. `METER_VALUE_FIELDS` is the one definition of the meter-values schema:
JSON key, attribute, unit and output rounding, in the device's key order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from homemeter.meter.roles import AGGREGATE_ROLES, Phase, Role

# A reading counts only with a plausible wall-clock time (2001..2100), as on the device.
VALID_TIME_MS = (1_000_000_000_000, 4_102_444_800_000)


@dataclass(frozen=True, slots=True)
class Quantity:
    """One published value: its JSON key, snapshot attribute, unit and output decimals."""

    key: str
    attr: str
    unit: str
    decimals: int
    description: str


METER_VALUE_FIELDS: tuple[Quantity, ...] = (
    Quantity("voltage", "voltage", "V", 1, "RMS voltage (channel 0's line; x2 for split phase)"),
    Quantity("current", "current", "A", 3, "RMS current, never negative"),
    Quantity("activePower", "active_power", "W", 1, "Active power, signed per the role"),
    Quantity("apparentPower", "apparent_power", "VA", 1, "Apparent power, never negative"),
    Quantity("reactivePower", "reactive_power", "VAR", 1, "Reactive power, + inductive"),
    Quantity("powerFactor", "power_factor", "", 3, "P/S signed by sign(P)*sign(Q), -1..1"),
    Quantity("activeEnergyImported", "active_energy_imported", "Wh", 1, "Cumulative, + direction"),
    Quantity("activeEnergyExported", "active_energy_exported", "Wh", 1, "Cumulative, - direction"),
    Quantity("reactiveEnergyImported", "reactive_energy_imported", "VArh", 1, "Cumulative"),
    Quantity("reactiveEnergyExported", "reactive_energy_exported", "VArh", 1, "Cumulative"),
    Quantity("apparentEnergy", "apparent_energy", "VAh", 1, "Cumulative"),
)

ENERGY_ATTRS: tuple[str, ...] = tuple(q.attr for q in METER_VALUE_FIELDS[6:])


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

    def aggregate(self, role: Role) -> RoleAggregate:
        return self.aggregates[AGGREGATE_ROLES.index(role)]

    def with_readings(self) -> Iterator[ChannelReading]:
        """Channels that meter-values lists: active and with a valid reading."""
        return (c for c in self.channels if c.has_reading)
