"""MQTT and InfluxDB settings in the configuration file: old files load, secrets stay in the file only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.influxdb import InfluxDbConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.config.secrets import PLACEHOLDER, unmask
from homemeter.errors import ConfigError
from homemeter.store.config import ConfigService, ConfigStore


def defaults() -> list[ChannelConfig]:
    return [ChannelConfig.default(i) for i in range(4)]


def test_a_file_written_before_these_sections_existed_still_loads(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    doc = json.loads(json.dumps(store.load(defaults).model_dump(mode="json")))
    del doc["mqtt"], doc["influxdb"]
    store.path.write_text(json.dumps(doc))
    config = store.load(defaults)
    assert config.mqtt == MqttConfig() and config.influxdb == InfluxDbConfig()


async def test_secrets_are_clear_in_the_file_and_masked_in_every_other_dump(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    service = ConfigService(store, store.load(defaults))
    await service.update(influxdb=InfluxDbConfig(token=SecretStr("tok-123"), password=SecretStr("")))
    assert json.loads(store.path.read_text())["influxdb"]["token"] == "tok-123"
    assert store.load(defaults).influxdb.token.get_secret_value() == "tok-123"
    dumped = service.current.model_dump(mode="json")["influxdb"]
    assert (dumped["token"], dumped["password"]) == (PLACEHOLDER, "")  # nothing to hide in ""
    assert "tok-123" not in repr(service.current) and "tok-123" not in str(service.current)


def test_the_placeholder_keeps_the_stored_secret_and_anything_else_replaces_it() -> None:
    stored = MqttConfig(password=SecretStr("old"))
    kept = MqttConfig.model_validate(unmask({"password": PLACEHOLDER}, stored))
    assert kept.password.get_secret_value() == "old"
    replaced = MqttConfig.model_validate(unmask({"password": "new"}, stored))
    assert replaced.password.get_secret_value() == "new"


def test_a_bad_section_in_the_file_names_the_field(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    doc = store.load(defaults).model_dump(mode="json")
    doc["mqtt"]["port"] = 0
    store.path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        store.load(defaults)


def test_an_unknown_key_in_the_file_is_an_error_not_ignored(tmp_path: Path) -> None:
    # REST bodies ignore unknown keys (device compatibility); the file does not hide a typo.
    store = ConfigStore(tmp_path)
    doc = store.load(defaults).model_dump(mode="json")
    doc["influxdb"]["tokn"] = "x"
    store.path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"influxdb\.tokn"):
        store.load(defaults)


def test_appconfig_round_trips_through_the_file_unchanged(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    config = AppConfig(
        channels=tuple(defaults()),
        mqtt=MqttConfig(
            enabled=True,
            server="broker.lan",
            password=SecretStr("p w"),
            topic="a/b",
            useTls=True,
            caFile="/etc/ssl/ca.pem",
            haDiscoveryPrefix="ha",
        ),
        influxdb=InfluxDbConfig(version=1, password=SecretStr("x"), token=SecretStr("y")),
    )
    store.save(config)
    assert store.load(defaults) == config


@pytest.mark.parametrize("measurement", ["#meter", "a\nb", "a\rb", "a\\b"])
def test_an_influxdb_measurement_that_cannot_be_written_is_refused(measurement: str) -> None:
    with pytest.raises(ValidationError, match="measurement"):
        InfluxDbConfig(measurement=measurement)
