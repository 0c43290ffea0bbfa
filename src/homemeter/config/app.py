"""The whole configuration: one pydantic model per area, gathered in `AppConfig`.

The same models validate the file, are the REST bodies and generate the OpenAPI schema.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from homemeter.config.channel import MAX_CHANNELS, ChannelConfig, check_channel_set
from homemeter.config.hardware import Ade7953Calibration, LedConfig
from homemeter.config.history import HistoryConfig
from homemeter.config.influxdb import InfluxDbConfig
from homemeter.config.mdns import MdnsConfig
from homemeter.config.metrics import MetricsConfig
from homemeter.config.modbus import ModbusConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.config.sources import SourcesConfig
from homemeter.config.udp_log import UdpLogConfig


class AppConfig(BaseModel):
    """Everything a user configures; wire names follow the device's JSON where one exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    sampleTime: int = Field(200, ge=200, le=60_000, strict=True, description="ms per window")
    energySaveInterval: float = Field(
        10.0, ge=1.0, le=3600.0, description="seconds between energy saves to disk"
    )
    channels: tuple[ChannelConfig, ...]
    modbus: ModbusConfig = ModbusConfig()
    mdns: MdnsConfig = MdnsConfig()
    mqtt: MqttConfig = MqttConfig()
    influxdb: InfluxDbConfig = InfluxDbConfig()
    led: LedConfig = LedConfig()
    ade7953: Ade7953Calibration = Ade7953Calibration()
    udpLog: UdpLogConfig = UdpLogConfig()
    metrics: MetricsConfig = MetricsConfig()
    history: HistoryConfig = HistoryConfig()
    sources: SourcesConfig = SourcesConfig()  # remote meters, used with --source config

    @field_validator("channels")
    @classmethod
    def _consistent(cls, channels: tuple[ChannelConfig, ...]) -> tuple[ChannelConfig, ...]:
        if not 1 <= len(channels) <= MAX_CHANNELS:
            raise ValueError(f"between 1 and {MAX_CHANNELS} channels")
        check_channel_set(channels, len(channels))
        return channels


def describe(err: ValidationError) -> str:
    """One line per problem, each naming the field path: what the CLI and the API print."""
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)
