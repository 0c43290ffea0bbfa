"""The one definition of every measured quantity of a channel.

Each row carries what every consumer needs: the meter-values JSON key (the device's, in its key
order), the snapshot attribute, the device's unit and output decimals, whether the Modbus blocks
carry it, the Home Assistant unit, device class and state class (MQTT discovery, the Energy
dashboard), and the energy store column. The meter-values payload, the register map, the energy store,
MQTT discovery and InfluxDB fields are all generated from `QUANTITIES`; no second list exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    INSTANT = "instant"  # a value of the last window
    ENERGY = "energy"  # a cumulative counter that only grows between resets


@dataclass(frozen=True, slots=True)
class Quantity:
    key: str  # meter-values JSON key, InfluxDB field name
    attr: str  # ChannelReading / RoleAggregate attribute
    unit: str  # the device's unit label ("" for the dimensionless power factor)
    decimals: int  # the device's output rounding (half away from zero)
    description: str
    kind: Kind
    #: Position in the Modbus per-channel block (2 registers each; the role blocks have no current,
    #: so they hold slot - 1). None: not in the block (voltage is a general register).
    modbus_slot: int | None
    ha_unit: str | None  # Home Assistant's unit of measurement (None: dimensionless)
    device_class: str | None  # Home Assistant sensor device class (None: it has none that fits)
    column: str | None = None  # energy store column (energies only)

    @property
    def state_class(self) -> str:
        """Home Assistant state class: energies are `total_increasing` (the Energy dashboard needs it)."""
        return "total_increasing" if self.kind is Kind.ENERGY else "measurement"


_I, _E = Kind.INSTANT, Kind.ENERGY

#: In the device's meter-values key order. Home Assistant has no device class for reactive or apparent
#: energy: giving them `energy` with varh/VAh units fails its validation, so they have none.
QUANTITIES: tuple[Quantity, ...] = (
    Quantity("voltage", "voltage", "V", 1, "RMS voltage (channel 0's line; x2 for split phase)",
             _I, None, "V", "voltage"),
    Quantity("current", "current", "A", 3, "RMS current, never negative", _I, 0, "A", "current"),
    Quantity("activePower", "active_power", "W", 1, "Active power, signed per the role",
             _I, 1, "W", "power"),
    Quantity("apparentPower", "apparent_power", "VA", 1, "Apparent power, never negative",
             _I, 3, "VA", "apparent_power"),
    Quantity("reactivePower", "reactive_power", "VAR", 1, "Reactive power, + inductive",
             _I, 2, "var", "reactive_power"),
    Quantity("powerFactor", "power_factor", "", 3, "P/S signed by sign(P)*sign(Q), -1..1",
             _I, 4, None, "power_factor"),
    Quantity("activeEnergyImported", "active_energy_imported", "Wh", 1, "Cumulative, + direction",
             _E, 5, "Wh", "energy", "active_imported"),
    Quantity("activeEnergyExported", "active_energy_exported", "Wh", 1, "Cumulative, - direction",
             _E, 6, "Wh", "energy", "active_exported"),
    Quantity("reactiveEnergyImported", "reactive_energy_imported", "VARh", 1, "Cumulative",
             _E, 7, "varh", None, "reactive_imported"),
    Quantity("reactiveEnergyExported", "reactive_energy_exported", "VARh", 1, "Cumulative",
             _E, 8, "varh", None, "reactive_exported"),
    Quantity("apparentEnergy", "apparent_energy", "VAh", 1, "Cumulative",
             _E, 9, "VAh", None, "apparent"),
)  # fmt: skip

#: The one quantity of the whole meter rather than of a channel (a snapshot attribute; the device's
#: `GET /ade7953/grid-frequency` key).
GRID_FREQUENCY = Quantity("gridFrequency", "grid_frequency", "Hz", 3, "Line frequency, filtered",
                          _I, False, "Hz", "frequency")  # fmt: skip

#: The largest energy total accepted from outside (API, backups, a device's counters), in Wh: a
#: million years of a household's use, yet far inside float32 (Modbus) and the rounding of the
#: payloads (1e308 Wh overflowed both: every meter-values answer became a 500).
MAX_ENERGY = 1e12

ENERGY_QUANTITIES: tuple[Quantity, ...] = tuple(q for q in QUANTITIES if q.kind is Kind.ENERGY)
ENERGY_ATTRS: tuple[str, ...] = tuple(q.attr for q in ENERGY_QUANTITIES)
ENERGY_COLUMNS: tuple[str, ...] = tuple(q.column or q.attr for q in ENERGY_QUANTITIES)


#: The Modbus per-channel block, in register order.
MODBUS_QUANTITIES: tuple[Quantity, ...] = tuple(
    sorted((q for q in QUANTITIES if q.modbus_slot is not None), key=lambda q: q.modbus_slot or 0)
)
