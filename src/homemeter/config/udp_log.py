"""Forwarding log lines to a syslog collector over UDP (the device's `logs-udp-destination`)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

SYSLOG_PORT = 514
DISABLED = "0.0.0.0"


class UdpLogConfig(BaseModel):
    """Where log lines go as syslog datagrams (the device's `logs-udp-destination`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destination: str = Field(DISABLED, description="IPv4 address; 0.0.0.0 disables forwarding")
    port: int = Field(SYSLOG_PORT, ge=1, le=65535, description="UDP port (the device: always 514)")

    @field_validator("destination")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError as err:
            raise ValueError("Invalid IP address format (dotted IPv4 expected)") from err
