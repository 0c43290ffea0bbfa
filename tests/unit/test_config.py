"""Configuration file: validated with errors that name the field, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Role
from homemeter.errors import ConfigError
from homemeter.store.config import ConfigStore


def defaults() -> list[ChannelConfig]:
    return [ChannelConfig.default(i) for i in range(17)]


def test_first_load_writes_factory_configuration(tmp_path: Path) -> None:
    config = ConfigStore(tmp_path).load(defaults)
    assert (tmp_path / "config.json").exists()
    assert ConfigStore(tmp_path).load(defaults) == config
    assert config.sampleTime == 200 and config.channels[0].role is Role.GRID


def test_invalid_file_names_the_field_and_is_left_untouched(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.load(defaults)
    doc = json.loads(store.path.read_text())
    doc["channels"][3]["ctSpecification"]["currentRating"] = 99_999
    store.path.write_text(json.dumps(doc))
    before = store.path.read_bytes()
    with pytest.raises(ConfigError, match=r"channels\.3\.ctSpecification\.currentRating"):
        store.load(defaults)
    assert store.path.read_bytes() == before


def test_malformed_json_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="invalid configuration"):
        ConfigStore(tmp_path).load(defaults)


def test_group_with_two_roles_is_rejected() -> None:
    channels = defaults()
    channels[1] = channels[1].model_copy(update={"groupLabel": "Group 2", "role": Role.PV})
    with pytest.raises(ValidationError, match="groupLabel"):
        AppConfig(channels=tuple(channels))


def test_channel_zero_cannot_be_deactivated_or_split_phase() -> None:
    assert ChannelConfig.model_validate({"index": 0, "active": False, "label": "a", "groupLabel": "g"}).active
    with pytest.raises(ValidationError, match="split-phase"):
        ChannelConfig.model_validate({"index": 0, "phase": 4, "label": "a", "groupLabel": "g"})


def test_strict_json_types() -> None:
    good = {"index": 1, "label": "Oven", "groupLabel": "Kitchen"}
    ChannelConfig.model_validate_json(json.dumps({**good, "ctSpecification": {"currentRating": 50}}))
    for bad in ({"active": 1}, {"label": ""}, {"index": 1.5}, {"role": "heater"}, {"index": 17}):
        with pytest.raises(ValidationError):
            ChannelConfig.model_validate_json(json.dumps({**good, **bad}))
