"""The service configuration: one pydantic model per area, stored as one JSON file.

The same models validate the file, are the REST bodies and generate the OpenAPI schema. The file is
replaced atomically; a file that does not validate stops the service with a message naming the field,
and is never overwritten with defaults (energy lives elsewhere and is never touched by config).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from homemeter.errors import ConfigError
from homemeter.integrations.influxdb.config import InfluxDbConfig
from homemeter.integrations.modbus.config import ModbusConfig
from homemeter.integrations.mqtt.config import MqttConfig
from homemeter.log_control import UdpLogConfig
from homemeter.meter.channel import MAX_CHANNELS, ChannelConfig, check_channel_set
from homemeter.store.atomic import write_atomic
from homemeter.store.hardware import Ade7953Calibration, LedConfig
from homemeter.store.secrets import REVEAL

CONFIG_FILE = "config.json"


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
    mqtt: MqttConfig = MqttConfig()
    influxdb: InfluxDbConfig = InfluxDbConfig()
    led: LedConfig = LedConfig()
    ade7953: Ade7953Calibration = Ade7953Calibration()
    udpLog: UdpLogConfig = UdpLogConfig()

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


class ConfigStore:
    """Loads, validates and atomically saves `config.json` in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CONFIG_FILE

    def load(self, defaults: Callable[[], Sequence[ChannelConfig]]) -> AppConfig:
        """The stored configuration; on first start the factory one, written to disk."""
        if not self.path.exists():
            config = AppConfig(channels=tuple(defaults()))
            self.save(config)
            return config
        try:
            raw = self.path.read_bytes()
            return AppConfig.model_validate_json(raw)
        except OSError as err:
            raise ConfigError(f"cannot read {self.path}: {err.strerror}") from err
        except ValidationError as err:
            raise ConfigError(
                f"invalid configuration in {self.path}: {describe(err)} "
                "(fix or remove the file; energy totals are kept separately and are not affected)"
            ) from err

    def save(self, config: AppConfig) -> None:
        # The one dump with secrets in clear: the publishers need them (store/secrets.py).
        data = json.dumps(config.model_dump(mode="json", context=REVEAL), indent=2).encode() + b"\n"
        write_atomic(self.path, data, mode=0o600)


Listener = Callable[[AppConfig, AppConfig], None]


class ConfigService:
    """The live configuration: validate a change whole, save it atomically, then tell listeners.

    Nothing is half applied: an invalid change raises before anything is written or notified.
    """

    def __init__(self, store: ConfigStore, config: AppConfig) -> None:
        self._store = store
        self.current = config
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def replace(self, config: AppConfig) -> AppConfig:
        old = self.current
        if config == old:
            return old
        self._store.save(config)
        self.current = config
        for listener in self._listeners:
            listener(old, config)
        return config

    def update(self, **changes: object) -> AppConfig:
        """A new configuration with some top-level fields replaced (validated whole)."""
        doc = self.current.model_dump()
        doc.update(changes)
        return self.replace(AppConfig.model_validate(doc))
