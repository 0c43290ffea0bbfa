"""Register maps of Modbus energy meters: one data file per model, turned into channels.

A model file (JSON; built-in ones in `models/`, a user's with `--meter-model-file`) lists the
meter's channels (one per phase for a three-phase meter) and, per channel, the register of each
quantity under its meter-values key (`voltage`, `activePower`, `activeEnergyImported`, ...):
address (decimal or "0x..." as datasheets print it), type (float32 by default) and a scale that
turns the meter's unit into homemeter's (kWh -> Wh: 1000). Everything else is derived:

- the reads: the registers grouped into as few requests as `maxRegisters` allows (Eastron meters
  answer at most 40 parameters, 80 registers, per request; Modbus itself allows 125);
- missing values: apparent power from V x I, reactive power 0, PF from P/S; a missing energy
  counter is integrated from its power by the source.

Decoding is one `struct` format per read block: big-endian words, and for 32-bit types the word
order of the model ("big": high word first, as Eastron; "little": low word first).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from homemeter.config.app import describe
from homemeter.config.roles import Phase
from homemeter.errors import ConfigError
from homemeter.meter.quantities import ENERGY_QUANTITIES, QUANTITIES
from homemeter.meter.source import Measurement

MODBUS_MAX_REGISTERS = 125  # FC03/FC04 quantity limit of the Modbus specification
_WIDTH = {"float32": 2, "int32": 2, "uint32": 2, "int16": 1, "uint16": 1}
_FORMAT = {"float32": "f", "int32": "i", "uint32": "I", "int16": "h", "uint16": "H"}
_KEYS = tuple(q.key for q in QUANTITIES)
ENERGY_KEYS = tuple(q.key for q in ENERGY_QUANTITIES)


def _address(value: object) -> object:
    """Datasheets print addresses in hex: "0x015A" is accepted beside 346."""
    if isinstance(value, str) and value.lower().startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            return value
    return value


Address = Annotated[int, BeforeValidator(_address), Field(ge=0, le=65535)]


class RegisterKind(StrEnum):
    INPUT = "input"  # function 04 (Eastron and most meters)
    HOLDING = "holding"  # function 03


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Address
    type: Literal["float32", "int32", "uint32", "int16", "uint16"] = "float32"
    scale: float = Field(1.0, allow_inf_nan=False, description="multiplies the raw value")

    @property
    def width(self) -> int:
        return _WIDTH[self.type]


class ModelChannel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1, max_length=63)
    phase: Phase = Phase.L1
    values: dict[str, Register]

    @model_validator(mode="after")
    def _known_keys(self) -> ModelChannel:
        unknown = sorted(set(self.values) - set(_KEYS))
        if unknown:
            raise ValueError(f"unknown quantities {unknown}; known: {', '.join(_KEYS)}")
        missing = [k for k in ("voltage", "current", "activePower") if k not in self.values]
        if missing:
            raise ValueError(f"every channel needs {', '.join(missing)}")
        return self


class MeterModel(BaseModel):
    """One model file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, max_length=32)
    description: str = ""
    registers: RegisterKind = RegisterKind.INPUT
    wordOrder: Literal["big", "little"] = "big"
    maxRegisters: int = Field(MODBUS_MAX_REGISTERS, ge=2, le=MODBUS_MAX_REGISTERS)
    frequency: Register | None = None
    channels: tuple[ModelChannel, ...]

    @model_validator(mode="after")
    def _no_overlaps(self) -> MeterModel:
        # Here rather than as field limits: pydantic would add a confusing second message when a
        # channel is invalid.
        if not 1 <= len(self.channels) <= 255:
            raise ValueError("channels: 1 to 255 channels")
        # Channels may share a register (one voltage input for several circuits), but only whole
        # and as the same type: a partial overlap is a typo in the map.
        taken: dict[int, tuple[str, int, str]] = {}
        for where, reg in _named_registers(self):
            for a in range(reg.address, reg.address + reg.width):
                other = taken.setdefault(a, (where, reg.address, reg.type))
                if other[0] != where and other[1:] != (reg.address, reg.type):
                    raise ValueError(f"{where} overlaps {other[0]} at register {a}")
        return self


def _named_registers(model: MeterModel) -> list[tuple[str, Register]]:
    regs = [("frequency", model.frequency)] if model.frequency is not None else []
    for i, ch in enumerate(model.channels):
        regs.extend((f"channels[{i}].{key}", reg) for key, reg in ch.values.items())
    return [(name, reg) for name, reg in regs if reg is not None]


def builtin_models() -> tuple[str, ...]:
    files = resources.files(__package__).joinpath("models").iterdir()
    return tuple(sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json")))


def load_model(name: str | None = None, path: str | Path | None = None) -> MeterModel:
    """A built-in model by name, or a user's model file; `ConfigError` saying what is wrong."""
    if path is not None:
        where = str(path)
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ConfigError(f"meter model file {where}: {err.strerror}") from err
    else:
        if name not in builtin_models():
            raise ConfigError(f"unknown meter model {name!r}: choose {', '.join(builtin_models())}")
        where = f"built-in model {name}"
        text = resources.files(__package__).joinpath("models", f"{name}.json").read_text()
    try:
        return MeterModel.model_validate(json.loads(text))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: invalid JSON ({err})") from err
    except ValidationError as err:
        raise ConfigError(f"{where}: {describe(err)}") from err


@dataclass(frozen=True, slots=True)
class Block:
    """One read request and the struct that decodes its answer."""

    address: int
    count: int
    layout: struct.Struct  # big-endian words, high word first; gaps skipped
    slots: tuple[tuple[int, str, float, int], ...]  # (channel or -1 (frequency), key, scale, value)
    swaps: tuple[int, ...]  # word offsets of 32-bit values to swap first (word order "little")


@dataclass(frozen=True, slots=True)
class ChannelValues:
    """One channel as decoded: the values and the meter's cumulative counters (None: not mapped)."""

    measurement: Measurement
    power_factor: float | None
    counters: tuple[float | None, ...]  # ENERGY_KEYS order, in Wh / VArh / VAh


_FREQ = -1


class RegisterPlan:
    """A model compiled into read blocks and a decoder (built once per source)."""

    def __init__(self, model: MeterModel) -> None:
        self.model = model
        wanted: list[tuple[Register, int, str]] = []
        if model.frequency is not None:
            wanted.append((model.frequency, _FREQ, "frequency"))
        for i, ch in enumerate(model.channels):
            wanted.extend((reg, i, key) for key, reg in ch.values.items())
        wanted.sort(key=lambda w: w[0].address)
        groups: list[list[tuple[Register, int, str]]] = []
        for item in wanted:
            reg = item[0]
            if groups and reg.address + reg.width - groups[-1][0][0].address <= model.maxRegisters:
                groups[-1].append(item)
            else:
                groups.append([item])
        little = model.wordOrder == "little"
        self.blocks: tuple[Block, ...] = tuple(_block(group, little) for group in groups)

    def decode(self, answers: Sequence[Sequence[int]]) -> tuple[list[ChannelValues], float | None]:
        """The words of every block (16-bit register values, in `blocks` order) as channels."""
        values: list[dict[str, float]] = [{} for _ in self.model.channels]
        frequency: float | None = None
        for block, words in zip(self.blocks, answers, strict=True):
            if len(words) != block.count:
                raise ValueError(f"{len(words)} registers at {block.address}, expected {block.count}")
            ordered = list(words)
            for at in block.swaps:
                ordered[at], ordered[at + 1] = ordered[at + 1], ordered[at]
            raw = block.layout.unpack(struct.pack(f">{block.count}H", *ordered))
            for ch, key, scale, at in block.slots:
                if ch == _FREQ:
                    frequency = float(raw[at]) * scale
                else:
                    values[ch][key] = float(raw[at]) * scale
        return [_channel(v) for v in values], frequency


def _block(group: list[tuple[Register, int, str]], little: bool) -> Block:
    start = group[0][0].address
    fmt, pos, swaps = [">"], start, []
    index: dict[int, int] = {}  # register address -> position of its value in the unpacked tuple
    for reg, _, _ in group:
        if reg.address in index:
            continue  # shared by several channels: read once
        if reg.address > pos:
            fmt.append(f"{2 * (reg.address - pos)}x")
        fmt.append(_FORMAT[reg.type])
        index[reg.address] = len(index)
        if little and reg.width == 2:
            swaps.append(reg.address - start)
        pos = reg.address + reg.width
    return Block(
        start,
        pos - start,
        struct.Struct("".join(fmt)),
        tuple((ch, key, reg.scale, index[reg.address]) for reg, ch, key in group),
        tuple(swaps),
    )


def _channel(v: dict[str, float]) -> ChannelValues:
    voltage, current, p = v["voltage"], v["current"], v["activePower"]
    s = v.get("apparentPower", voltage * current)
    q = v.get("reactivePower", 0.0)
    counters = tuple(v.get(key) for key in ENERGY_KEYS)
    return ChannelValues(Measurement(voltage, current, p, q, s), v.get("powerFactor"), counters)
