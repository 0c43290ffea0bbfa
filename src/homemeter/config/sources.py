"""Remote meters as homemeter's source: which meters, and which of their channels each channel shows.

`sources.meters` lists the meters (an EnergyMe-Home device over its REST API, a Modbus TCP meter
with a register-map model); `sources.channels` maps each homemeter channel to one channel of one
meter. `homemeter run --source config` reads them; `--source energyme|modbus --source-url URL` is the
one-meter shorthand (`single_meter`), which takes the user and password of a listed meter with the
same URL when the environment gives none.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from homemeter.config.channel import MAX_CHANNELS
from homemeter.config.secrets import Password

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="letters, digits, - and _")]
DEFAULT_MODBUS_PORT = 502
DEFAULT_UNIT = 1


class SourceKind(StrEnum):
    ENERGYME = "energyme"  # an EnergyMe-Home device (or another homemeter): REST API, Digest auth
    MODBUS = "modbus"  # a Modbus TCP energy meter read with a register-map model


class MeterSource(BaseModel):
    """One remote meter and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    kind: SourceKind
    url: str = Field(description="energyme: http://HOST[:PORT]; modbus: modbus://HOST[:PORT][/UNIT]")
    user: str = Field("admin", max_length=63, description="energyme: the device's user")
    password: Password = Field(SecretStr(""), description="energyme: the device's password")
    model: str | None = Field(None, description="modbus: a built-in model (sdm630, sdm120)")
    modelFile: str | None = Field(None, description="modbus: absolute path of a model file (JSON)")
    pollInterval: float = Field(1.0, ge=0.2, le=60.0, description="seconds between polls")
    timeout: float = Field(3.0, ge=0.2, le=30.0, description="seconds an answer may take")

    @model_validator(mode="after")
    def _consistent(self) -> MeterSource:
        parts = urlsplit(self.url)
        if parts.username or parts.password:
            # The URL is shown in the status and the log; the password has its own, masked field.
            raise ValueError("url: no user or password in the URL; use the user and password fields")
        if self.kind is SourceKind.ENERGYME:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url: an EnergyMe device is http://HOST[:PORT], got {self.url!r}")
            if self.model or self.modelFile:
                raise ValueError("model/modelFile: only for kind modbus")
        else:
            modbus_address(self.url)  # raises with the reason
            if (self.model is None) == (self.modelFile is None):
                raise ValueError("model or modelFile: exactly one for kind modbus")
            if self.modelFile is not None and not self.modelFile.startswith("/"):
                raise ValueError(f"modelFile: an absolute path, got {self.modelFile!r}")
        return self


def modbus_address(url: str) -> tuple[str, int, int]:
    """(host, port, unit) of `modbus://HOST[:PORT][/UNIT]`; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "modbus" or not parts.hostname:
        raise ValueError(f"url: a Modbus meter is modbus://HOST[:PORT][/UNIT], got {url!r}")
    try:
        port = parts.port or DEFAULT_MODBUS_PORT
    except ValueError as err:
        raise ValueError(f"url: bad port in {url!r}") from err
    path = parts.path.strip("/")
    if path and not (path.isdigit() and 0 <= int(path) <= 247):
        raise ValueError(f"url: the unit id after the / is 0..247, got {path!r}")
    return parts.hostname, port, int(path) if path else DEFAULT_UNIT


class ChannelSource(BaseModel):
    """Homemeter channel `channel` shows channel `sourceChannel` of meter `source`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: int = Field(ge=0, lt=MAX_CHANNELS)
    source: Name
    sourceChannel: int = Field(ge=0, le=255, description="the meter's channel index (0-based)")


class SourcesConfig(BaseModel):
    """The remote meters and the channel map (used with `--source config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meters: tuple[MeterSource, ...] = ()
    channels: tuple[ChannelSource, ...] = ()

    @field_validator("meters")
    @classmethod
    def _unique_names(cls, meters: tuple[MeterSource, ...]) -> tuple[MeterSource, ...]:
        names = [m.name for m in meters]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two meters named {name!r}")
        return meters

    @model_validator(mode="after")
    def _mapped_once(self) -> SourcesConfig:
        names = {m.name for m in self.meters}
        seen: dict[int, ChannelSource] = {}
        used: dict[tuple[str, int], int] = {}
        for mapping in self.channels:
            if mapping.source not in names:
                raise ValueError(
                    f"channels: channel {mapping.channel} names unknown meter {mapping.source!r}"
                )
            if mapping.channel in seen:
                raise ValueError(f"channels: channel {mapping.channel} is mapped twice")
            seen[mapping.channel] = mapping
            key = (mapping.source, mapping.sourceChannel)
            if key in used:
                # Its energy would be counted twice.
                raise ValueError(
                    f"channels: {mapping.source} channel {mapping.sourceChannel} is shown by both "
                    f"channel {used[key]} and channel {mapping.channel}"
                )
            used[key] = mapping.channel
        return self

    def meter(self, name: str) -> MeterSource:
        return next(m for m in self.meters if m.name == name)


def single_meter(given: dict[str, Any], count: int, configured: SourcesConfig) -> SourcesConfig:
    """`--source KIND --source-url URL`: one meter named KIND, channel k showing its channel k < `count`.

    `given` holds `kind`, `url` and whatever the flags and environment set (`user`, `password`,
    `model`, `modelFile`). The rest comes from a configured meter with the same URL (so the password
    can live in the configuration, masked like any secret), else the defaults.
    """
    url = str(given["url"]).rstrip("/")
    known = next((m for m in configured.meters if m.url.rstrip("/") == url), None)
    doc: dict[str, Any] = {"name": str(given["kind"])}
    if known is not None:
        doc.update(known.model_dump(include={"user", "password", "pollInterval", "timeout"}))
    doc.update({k: v for k, v in given.items() if v is not None})
    meter = MeterSource.model_validate(doc)
    return SourcesConfig(
        meters=(meter,),
        channels=tuple(ChannelSource(channel=k, source=meter.name, sourceChannel=k) for k in range(count)),
    )
