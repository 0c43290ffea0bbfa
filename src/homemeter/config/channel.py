"""Channel configuration: fields, defaults and validation exactly as the device's ChannelData.

The same pydantic model validates the stored configuration, the REST bodies and generates the OpenAPI
schema, so there is no second list of fields anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from homemeter.config.roles import Phase, Role

#: The device's compile-time maximum; homemeter defaults to it.
MAX_CHANNELS = 17

# ArduinoJson semantics: an integer is accepted where a float is expected, never a string or bool.
StrictFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Label = Annotated[str, Field(strict=True, min_length=1, max_length=63)]


class CtSpecification(BaseModel):
    """Current transformer: rated current, output voltage at that current, and a trim factor."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    currentRating: StrictFloat = Field(30.0, ge=0.0, le=10_000.0, description="A RMS")
    voltageOutput: StrictFloat = Field(0.333, ge=0.0, le=1.0, description="V RMS at rated current")
    scalingFraction: StrictFloat = Field(
        0.0, ge=-10.0, le=10.0, description="Multiplies current, power and energy by (1 + x)"
    )


class ChannelConfig(BaseModel):
    """One channel as `GET /api/v1/ade7953/channel?index=N` shows it (key order included)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int = Field(strict=True, ge=0, lt=MAX_CHANNELS)
    active: StrictBool = False
    reverse: StrictBool = False
    label: Label
    phase: Phase = Field(Phase.L1, strict=False)
    ctSpecification: CtSpecification = CtSpecification()
    groupLabel: Label
    role: Role = Role.LOAD

    @model_validator(mode="after")
    def _channel_zero_rules(self) -> ChannelConfig:
        # Channel 0 carries the only voltage input: it defines the phase frame and is always on.
        if self.index == 0 and self.phase is Phase.SPLIT:
            raise ValueError("phase: channel 0 cannot be split-phase (4)")
        if self.index == 0 and not self.active:
            return self.model_copy(update={"active": True})
        return self

    @classmethod
    def default(cls, index: int) -> ChannelConfig:
        """The device's factory defaults for channel `index`."""
        return cls(
            index=index,
            active=index == 0,
            label=f"Channel {index}",
            groupLabel=f"Group {index}",
            role=Role.GRID if index == 0 else Role.LOAD,
        )


def check_group_roles(channels: Iterable[ChannelConfig]) -> None:
    """Every channel sharing a group label must share its role (the device rejects otherwise)."""
    seen: dict[str, tuple[Role, int]] = {}
    for ch in channels:
        first = seen.setdefault(ch.groupLabel, (ch.role, ch.index))
        if first[0] is not ch.role:
            raise ValueError(
                f"groupLabel: channel {ch.index} has role {ch.role.value!r} but channel "
                f"{first[1]} in group {ch.groupLabel!r} has role {first[0].value!r}"
            )


def check_channel_set(channels: Sequence[ChannelConfig], count: int) -> None:
    """A full channel table: indexes 0..count-1 in order, consistent groups."""
    if len(channels) != count:
        raise ValueError(f"channels: expected {count} channels, got {len(channels)}")
    for position, ch in enumerate(channels):
        if ch.index != position:
            raise ValueError(f"channels[{position}].index: expected {position}, got {ch.index}")
    check_group_roles(channels)
