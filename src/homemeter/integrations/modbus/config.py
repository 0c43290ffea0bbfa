"""Modbus TCP server settings: the `modbus` section of the configuration file and REST body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModbusConfig(BaseModel):
    """Defaults follow the device (port 502) except where the device is needlessly tight.

    The device allows 3 clients and a 10 s idle timeout (reference 1.1) because of its RAM; a Linux
    host can afford more, and 60 s keeps slow pollers (one read a minute) connected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    bind: str = Field("0.0.0.0", min_length=1, description="address to listen on")
    port: int = Field(502, ge=1, le=65535, description="TCP port (the device uses 502)")
    idleTimeout: float = Field(  # camelCase: the wire name, like the device's JSON
        60.0, ge=1.0, le=3600.0, description="seconds without a request before a client is closed"
    )
    maxClients: int = Field(
        64, ge=1, le=1024, description="simultaneous clients; further ones are accepted and closed"
    )
