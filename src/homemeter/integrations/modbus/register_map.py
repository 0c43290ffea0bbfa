"""The Modbus register map: the one definition of every address homemeter serves.

Copied from the device (reference integrations.md 1.5, HEAD firmware): general registers at 0-7,
meter registers at 100-103, one 18-register block per role at 200/300/400/500/600 and one
20-register block per channel at 1000 + 100 * channel. Every other address is a gap (exception 02).
The register image, the server's validity check, the REST/UI table, the CSV download and the tests
are all generated from `register_map()`; no other file writes an address.

"No value" is a float32 NaN (0x7FC00000), never 0: an active channel without a reading (its remote
meter unreachable, or not read yet) reads NaN for its measurements (current, powers, power factor);
so do the measurements of a role block with such a member (a sum without it would be wrong) and, when
it is channel 0, the voltage and frequency. Energies are homemeter's own totals: always a value. Each
register says which channel (`channel`) or role (`role`) its measurement needs; the image builder
applies it. NaN per value rather than an exception for the whole request: a client reading a whole
block keeps the values that exist (Home Assistant's Modbus integration shows a NaN float as "unknown";
an exception makes every sensor of that read "unavailable").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from homemeter.config.channel import MAX_CHANNELS
from homemeter.config.roles import AGGREGATE_ROLES, Role
from homemeter.meter.quantities import MODBUS_QUANTITIES, Quantity
from homemeter.meter.snapshot import MeterSnapshot

DType = Literal["uint64", "float32"]
ValueGetter = Callable[[MeterSnapshot], float | int]

#: Registers (16-bit words) per value type: float32 = 2, uint64 = 4 (reference 1.4).
WIDTH: dict[str, int] = {"uint64": 4, "float32": 2}

ROLE_BLOCK_BASE = 200  # grid 200, load 300, pv 400, battery 500, inverter 600 (AGGREGATE_ROLES)
ROLE_BLOCK_STRIDE = 100
CHANNEL_BLOCK_BASE = 1000
CHANNEL_BLOCK_STRIDE = 100
UINT64_MAX = (1 << 64) - 1

CSV_COLUMNS = ("address", "name", "type", "unit", "decimals", "description")


@dataclass(frozen=True, slots=True)
class Register:
    """One served value: where it lives, how it is encoded and which snapshot field it shows."""

    address: int  # 0-based PDU address of the first (most significant) word
    name: str  # stable identifier, e.g. "grid_active_power", "channel_3_current"
    unit: str  # "" for dimensionless (power factor)
    dtype: DType
    decimals: int  # rounding (half away from zero) applied before float32 conversion
    description: str
    value: ValueGetter
    channel: int | None = None  # a measurement of this channel: no value without its reading
    role: Role | None = None  # a measurement summed over this role: no value if a member has none

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return WIDTH[self.dtype]

    @property
    def end(self) -> int:
        """First address after this value."""
        return self.address + WIDTH[self.dtype]


#: Quantities that are measurements (no value without a reading); energies are totals.
MEASURED = frozenset({"current", "active_power", "reactive_power", "apparent_power", "power_factor"})

# Register wording per quantity; units, decimals and the order come from `MODBUS_QUANTITIES`.
_TEXT = {
    "current": "RMS current",
    "active_power": "active power",
    "reactive_power": "reactive power",
    "apparent_power": "apparent power",
    "power_factor": "power factor",
    "active_energy_imported": "active energy imported",
    "active_energy_exported": "active energy exported",
    "reactive_energy_imported": "reactive energy imported",
    "reactive_energy_exported": "reactive energy exported",
    "apparent_energy": "apparent energy",
}
_CHANNEL_NOTE = {"active_power": ", signed per the channel's role", "power_factor": ", signed"}
_AGGREGATE_NOTE = {"power_factor": ", sum(P)/sum(S), 0 when sum(S) = 0"}

# Reference 1.5: channel blocks at offsets +0 .. +18; role blocks the same without current (+0 .. +16).
_CHANNEL_QUANTITIES: tuple[Quantity, ...] = MODBUS_QUANTITIES
_AGGREGATE_QUANTITIES: tuple[Quantity, ...] = tuple(q for q in MODBUS_QUANTITIES if q.attr != "current")


_ROLE_SIGN = {
    Role.GRID: "+ import, - export",
    Role.LOAD: "never negative",
    Role.PV: "never negative",
    Role.BATTERY: "+ discharge, - charge",
    Role.INVERTER: "signed AC output",
}


def _timestamp(snapshot: MeterSnapshot) -> int:
    # Whole seconds of the snapshot, not a live clock: a reply describes one instant.
    return min(max(int(snapshot.taken_at), 0), UINT64_MAX)


def _uptime(snapshot: MeterSnapshot) -> int:
    return min(max(snapshot.uptime_ms, 0), UINT64_MAX)


def _voltage(snapshot: MeterSnapshot) -> float:
    return snapshot.voltage


def _frequency(snapshot: MeterSnapshot) -> float:
    return snapshot.grid_frequency


def _aggregate_value(role: Role, attr: str) -> ValueGetter:
    def get(snapshot: MeterSnapshot) -> float:
        value: float = getattr(snapshot.aggregate(role), attr)
        return value

    return get


def _channel_value(channel: int, attr: str) -> ValueGetter:
    # Channels are stored in index order (channel c at position c), as the meter builds them.
    def get(snapshot: MeterSnapshot) -> float:
        value: float = getattr(snapshot.channels[channel], attr)
        return value

    return get


_GENERAL: tuple[Register, ...] = (
    Register(0, "timestamp", "s", "uint64", 0, "Unix time of the snapshot", _timestamp),
    Register(4, "uptime", "ms", "uint64", 0, "Milliseconds since the meter started", _uptime),
    Register(100, "voltage", "V", "float32", 1, "RMS voltage of channel 0", _voltage, channel=0),
    Register(102, "grid_frequency", "Hz", "float32", 3, "Line frequency, filtered", _frequency, channel=0),
)


def _role_block(index: int, role: Role) -> tuple[Register, ...]:
    base = ROLE_BLOCK_BASE + ROLE_BLOCK_STRIDE * index
    rows = []
    for i, q in enumerate(_AGGREGATE_QUANTITIES):
        text = f"{role.value.capitalize()} role (sum over its active channels): {_TEXT[q.attr]}"
        text += _AGGREGATE_NOTE.get(q.attr, "")
        if q.attr == "active_power":
            text += f", {_ROLE_SIGN[role]}"
        rows.append(
            Register(
                base + 2 * i,
                f"{role.value}_{q.attr}",
                q.unit,
                "float32",
                q.decimals,
                text,
                _aggregate_value(role, q.attr),
                role=role if q.attr in MEASURED else None,
            )
        )
    return tuple(rows)


def _channel_block(channel: int) -> tuple[Register, ...]:
    base = CHANNEL_BLOCK_BASE + CHANNEL_BLOCK_STRIDE * channel
    return tuple(
        Register(
            base + 2 * i,
            f"channel_{channel}_{q.attr}",
            q.unit,
            "float32",
            q.decimals,
            f"Channel {channel}: {_TEXT[q.attr]}{_CHANNEL_NOTE.get(q.attr, '')}",
            _channel_value(channel, q.attr),
            channel=channel if q.attr in MEASURED else None,
        )
        for i, q in enumerate(_CHANNEL_QUANTITIES)
    )


def register_map(channel_count: int) -> tuple[Register, ...]:
    """Every register for a meter with `channel_count` channels, in address order.

    Channel blocks exist for every channel < channel_count, active or not (reference 1.5).
    """
    if not 0 <= channel_count <= MAX_CHANNELS:
        raise ValueError(f"channel_count must be 0..{MAX_CHANNELS}, got {channel_count}")
    rows: list[Register] = list(_GENERAL)
    for index, role in enumerate(AGGREGATE_ROLES):
        rows.extend(_role_block(index, role))
    for channel in range(channel_count):
        rows.extend(_channel_block(channel))
    return tuple(rows)


def _row(reg: Register) -> dict[str, str | int]:
    return {
        "address": reg.address,
        "name": reg.name,
        "type": reg.dtype,
        "unit": reg.unit,
        "decimals": reg.decimals,
        "description": reg.description,
    }


def register_map_json(channel_count: int) -> list[dict[str, str | int]]:
    """The map as JSON-ready rows (REST endpoint, web UI table); keys are `CSV_COLUMNS`."""
    return [_row(reg) for reg in register_map(channel_count)]


def register_map_csv(channel_count: int) -> str:
    """The map as CSV with a header row (the UI's download), one line per register."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(register_map_json(channel_count))
    return out.getvalue()
