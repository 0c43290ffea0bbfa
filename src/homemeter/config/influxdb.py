"""InfluxDB settings: the `influxdb` section of the configuration file and the REST body.

Field names, types and defaults are the device's `influxdb/config` object (reference rest-api.md 4.2).
Validation is stricter where the device accepts values that cannot work (integrations.md 6.2.7):
`version` must be 1 or 2, `frequency` 1..3600 for PUT and PATCH alike, port 1..65535. Over-long
strings are refused with the limit instead of silently truncated; organisation and bucket get 63
characters instead of the device's 31 (6.2.8).

Three fields are homemeter's own (optional in a PUT, see `extension.py`): the device never checks the
server's certificate (6.2.2) and drops every point the server does not take (6.2.1).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictStr, field_validator

from homemeter.config.extension import EXTENSION
from homemeter.config.secrets import Password, Token

Name = Annotated[StrictStr, Field(max_length=63)]


class InfluxDbConfig(BaseModel):
    """Where the two line-protocol lines per channel are written, and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = False
    server: StrictStr = Field("localhost", min_length=1, max_length=255, description="host name or address")
    port: int = Field(8086, strict=True, ge=1, le=65535)
    version: int = Field(
        2, strict=True, ge=1, le=2, description="1: /write?db=, 2: /api/v2/write?org=&bucket="
    )
    database: Name = Field("energyme-home", description="v1 database")
    username: Name = Field("", description="v1 Basic auth user")
    password: Password = Field(SecretStr(""), description="v1 Basic auth password; never returned in clear")
    organization: Name = Field("my-org", description="v2 organisation")
    bucket: Name = Field("energyme-home", description="v2 bucket")
    token: Token = Field(SecretStr(""), description="v2 API token; never returned in clear")
    measurement: Name = Field("meter", min_length=1, description="measurement name of every line")
    frequency: int = Field(
        15,
        strict=True,
        ge=1,
        le=3600,
        description="seconds between the points of a channel (and between uploads)",
    )
    useSsl: StrictBool = Field(False, description="https instead of http")
    verifySsl: StrictBool = Field(
        True,
        description="with useSsl: check the server's certificate and host name (the device never does); "
        "turn off only for a server on your own network that you trust",
        json_schema_extra=EXTENSION,
    )
    caFile: StrictStr = Field(
        "",
        max_length=255,
        description="with useSsl: path of a PEM file with the CA (or self-signed certificate) to trust "
        "instead of the system's CAs; empty: the system's",
        json_schema_extra=EXTENSION,
    )
    queueMaxAge: int = Field(
        7,
        strict=True,
        ge=1,
        le=366,
        description="days of points kept on disk while the server cannot take them; beyond that the "
        "oldest are dropped (and counted)",
        json_schema_extra=EXTENSION,
    )

    @field_validator("measurement")
    @classmethod
    def _writable(cls, measurement: str) -> str:
        # A line starting with "#" is a comment to InfluxDB: every point would be silently ignored.
        if measurement.startswith("#"):
            raise ValueError("must not start with '#' (InfluxDB reads such a line as a comment)")
        if "\n" in measurement or "\r" in measurement:
            raise ValueError("must not contain line breaks")
        # InfluxDB 1.x loses a backslash before an escaped character of a measurement name.
        if "\\" in measurement:
            raise ValueError("must not contain a backslash")
        return measurement
