"""Modbus TCP server settings: the `modbus` section of the configuration file and REST body."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


class ModbusConfig(BaseModel):
    """Defaults follow the device (port 502) except where the device is needlessly tight.

    The device allows 3 clients and a 10 s idle timeout (reference 1.1) because of its RAM; a Linux
    host can afford more, and 60 s keeps slow pollers (one read a minute) connected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Strict types like the other REST bodies: a JSON bool, string or integer, never a look-alike.
    enabled: StrictBool = True
    bind: StrictStr = Field(
        "0.0.0.0", min_length=1, max_length=253, description="IP address (or host name) to listen on"
    )
    port: int = Field(502, strict=True, ge=1, le=65535, description="TCP port (the device uses 502)")
    idleTimeout: float = Field(  # camelCase: the wire name, like the device's JSON
        60.0,
        strict=True,
        ge=1.0,
        le=3600.0,
        description="seconds without a request before a client is closed",
    )
    maxClients: int = Field(
        64,
        strict=True,
        ge=1,
        le=1024,
        description="simultaneous clients; further ones are accepted and closed",
    )

    @field_validator("bind")
    @classmethod
    def _address(cls, bind: str) -> str:
        # Checked here so a typo is a 400 naming the field, not a failed bind (or a resolver error).
        try:
            ipaddress.ip_address(bind)
        except ValueError:
            if not _HOST_NAME.fullmatch(bind):
                raise ValueError(
                    "an IP address such as 0.0.0.0, ::1 or 192.168.1.10, or a host name"
                ) from None
        return bind
