"""An EnergyMe-Home configuration backup mapped onto homemeter's configuration, and back.

Every namespace and value type of the reference, device-only keys reported as skipped, corrupt
and foreign backups refused whole with the namespace.key named, and the device schema homemeter
writes reads back to the same configuration.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import SecretStr

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase, Role
from homemeter.config.secrets import PLACEHOLDER
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.backup import BackupRejected
from homemeter.store.device_backup import check_device_document, is_device_document, map_backup, raised
from homemeter.store.device_nvs import device_nvs
from homemeter.store.offline_import import energy_changes
from tests.device_backups import DEVICE_ID, INFLUX_TOKEN, MQTT_PASSWORD, device_backup, skipped_keys

VERSION = "0.1.0"


def factory(count: int = 17) -> AppConfig:
    return AppConfig(channels=tuple(ChannelConfig.default(i) for i in range(count)))


def mapped(doc: dict[str, Any], current: AppConfig | None = None) -> Any:
    backup = check_device_document(doc, DEVICE_ID, VERSION, force=False)
    return map_backup(backup.nvs, current or factory())


def rejected(doc: Any, force: bool = True) -> str:
    with pytest.raises(BackupRejected) as info:
        backup = check_device_document(doc, "000000000000", VERSION, force)
        map_backup(backup.nvs, factory())
    return str(info.value)


def test_every_setting_of_a_full_backup_arrives() -> None:
    settings = mapped(device_backup())
    config = settings.config
    kitchen = config.channels[1]
    assert (kitchen.label, kitchen.groupLabel, kitchen.role, kitchen.phase) == (
        "Circuit 1",
        "Room 1",
        Role.PV,
        Phase.L2,
    )
    assert kitchen.active and not kitchen.reverse and config.channels[4].reverse
    assert kitchen.ctSpecification.currentRating == 20.0 and kitchen.ctSpecification.scalingFraction == 0.015
    assert config.channels[0].ctSpecification.currentRating == 50.0
    assert [c.role for c in config.channels[:5]] == [
        Role.GRID,
        Role.PV,
        Role.BATTERY,
        Role.INVERTER,
        Role.LOAD,
    ]
    assert not config.channels[6].active
    assert config.sampleTime == 1000
    assert config.ade7953.aVGain == 4_100_000 and config.ade7953.phCalB == -10
    mqtt = config.mqtt
    assert (mqtt.enabled, mqtt.server, mqtt.port, mqtt.clientid, mqtt.topic, mqtt.frequency) == (
        True,
        "127.0.0.1",
        1,
        "energyme-kitchen",
        "house/energy",
        30,
    )
    assert mqtt.useCredentials and mqtt.password.get_secret_value() == MQTT_PASSWORD
    influx = config.influxdb
    assert (influx.server, influx.port, influx.version, influx.database, influx.bucket) == (
        "127.0.0.1",
        2,
        1,
        "energy",
        "power",
    )
    assert influx.token.get_secret_value() == INFLUX_TOKEN and influx.enabled
    assert config.udpLog.destination == "192.168.1.20"
    assert settings.log_levels == ("WARNING", "ERROR")
    assert settings.energy[3] == EnergyTotals(4000.0, 400.0, 1000.0, 500.0, 4400.0)
    assert set(settings.energy) == set(range(17))


def test_device_only_keys_are_listed_as_skipped_and_everything_else_imported() -> None:
    doc = device_backup()
    settings = mapped(doc)
    assert set(settings.skipped) == skipped_keys()
    assert "wifi_ns.ip" in settings.skipped and "led_ns.brightness" in settings.skipped
    assert "Wi-Fi" in settings.skipped["wifi_ns.ip"] and "LED" in settings.skipped["led_ns.brightness"]
    total = sum(len(keys) for keys in doc["nvs"].values())
    energy = sum(1 for _ in doc["nvs"]["energy_ns"])
    levels = 2
    assert settings.imported + energy + levels + len(settings.skipped) == total  # nothing dropped
    assert factory().led == settings.config.led  # the LED brightness did not sneak in


def test_homemeter_running_fewer_channels_skips_the_rest_by_name() -> None:
    settings = mapped(device_backup(), factory(8))
    assert len(settings.config.channels) == 8
    assert "channel 12: homemeter runs 8 channels" in settings.skipped["channels_ns.label_12"]
    assert "energy_ns.ch16_apparent" in settings.skipped and set(settings.energy) == set(range(8))


def test_keys_missing_from_the_backup_keep_the_current_values() -> None:
    doc = device_backup()
    del doc["nvs"]["custom_mqtt_ns"]
    del doc["nvs"]["channels_ns"]["label_2"]
    current = factory()
    settings = mapped(doc, current)
    assert settings.config.mqtt == current.mqtt
    assert (
        settings.config.channels[2].label == "Channel 2"
        and settings.config.channels[2].groupLabel == "Room 2"
    )


def test_legacy_role_flags_become_a_role_unless_role_is_there() -> None:
    doc = device_backup()
    channels = doc["nvs"]["channels_ns"]
    for i in (5, 6, 7, 8):
        del channels[f"role_{i}"]
    channels.update(
        {
            "is_grid_5": {"type": "u8", "value": 1},
            "is_prod_5": {"type": "u8", "value": 1},  # grid wins
            "is_prod_6": {"type": "u8", "value": 1},
            "is_batt_7": {"type": "u8", "value": 1},
            "is_grid_8": {"type": "u8", "value": 0},
            "is_prod_1": {"type": "u8", "value": 0},  # channel 1 has role_1
            "highpri_3": {"type": "u8", "value": 1},
        }
    )
    settings = mapped(doc)
    roles = [settings.config.channels[i].role for i in (5, 6, 7, 8)]
    assert roles == [Role.GRID, Role.PV, Role.BATTERY, Role.LOAD]
    assert settings.config.channels[1].role is Role.PV
    assert "superseded by channels_ns.role_1" in settings.skipped["channels_ns.is_prod_1"]
    assert "channels_ns.highpri_3" in settings.skipped


def test_device_coercions_empty_labels_and_split_phase_on_channel_zero() -> None:
    doc = device_backup()
    doc["nvs"]["channels_ns"].update(
        label_3={"type": "str", "value": ""},
        phase_0={"type": "u8", "value": 4},
        phase_5={"type": "u8", "value": 4},
    )
    config = mapped(doc).config
    assert config.channels[3].label == "Channel 3"
    assert config.channels[0].phase is Phase.L1 and config.channels[5].phase is Phase.SPLIT


def test_empty_mqtt_server_leaves_mqtt_disabled_and_a_chosen_server_is_kept() -> None:
    doc = device_backup()
    doc["nvs"]["custom_mqtt_ns"]["server"]["value"] = ""
    settings = mapped(doc)
    assert not settings.config.mqtt.enabled and settings.config.mqtt.server == factory().mqtt.server
    assert "custom_mqtt_ns.server" in settings.skipped
    doc = device_backup()
    doc["nvs"]["custom_mqtt_ns"]["server"]["value"] = "test.mosquitto.org"  # the device's default
    config = mapped(doc).config
    assert config.mqtt.enabled and config.mqtt.server == "test.mosquitto.org"  # the user enabled it


def test_older_firmware_widths_and_float_energy_are_read() -> None:
    doc = device_backup()
    nvs = doc["nvs"]
    nvs["energy_ns"]["ch2_actImp"] = {"type": "float", "value": 12.5}
    nvs["channels_ns"]["phase_2"] = {"type": "i32", "value": 3}
    nvs["channels_ns"]["ct_current_2"] = {"type": "u16", "value": 100}
    nvs["custom_mqtt_ns"]["port"] = {"type": "i32", "value": 1884}
    settings = mapped(doc)
    assert settings.energy[2].active_energy_imported == 12.5
    assert settings.config.channels[2].ctSpecification.currentRating == 100.0
    assert settings.config.mqtt.port == 1884


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (
            lambda n: n["channels_ns"]["active_3"].update(value=300),
            ["channels_ns.active_3", "out of range for u8"],
        ),
        (
            lambda n: n["channels_ns"]["label_3"].update(type="u8", value=3),
            ["channels_ns.label_3", "str entry"],
        ),
        (lambda n: n["channels_ns"]["label_3"].update(value=5), ["channels_ns.label_3", "JSON string"]),
        (lambda n: n["channels_ns"]["role_3"].update(value=9), ["channels_ns.role_3", "not a role code"]),
        (lambda n: n["channels_ns"]["active_3"].update(value=2), ["channels_ns.active_3", "0 or 1"]),
        (lambda n: n["channels_ns"]["ct_current_3"].update(value=20000.0), ["channels_ns.ct_current_3"]),
        (lambda n: n["channels_ns"]["phase_3"].update(value=7), ["channels_ns.phase_3"]),
        (lambda n: n["channels_ns"]["grp_label_2"].update(value="Room 1"), ["channels_ns", "groupLabel"]),
        (lambda n: n["energy_ns"]["ch1_actImp"].update(value=-5.0), ["energy_ns.ch1_actImp", ">= 0"]),
        (lambda n: n["ade7953_ns"]["sample_time"].update(value=50), ["ade7953_ns.sample_time"]),
        (lambda n: n["ade7953_ns"]["av_gain"].update(type="str", value="x"), ["ade7953_ns.av_gain"]),
        (lambda n: n["custom_mqtt_ns"]["topic"].update(value="a/#"), ["custom_mqtt_ns.topic", "wildcards"]),
        (lambda n: n["influxdb_ns"]["version"].update(value=3), ["influxdb_ns.version"]),
        (lambda n: n["adv_log_ns"]["printLevel"].update(value=6), ["adv_log_ns.printLevel"]),
        (lambda n: n["udp_log_ns"]["udp_dest"].update(value="nowhere"), ["udp_log_ns.udp_dest"]),
        (lambda n: n["wifi_ns"]["ip"].update(type="blob"), ["wifi_ns.ip", "type"]),
        (lambda n: n["channels_ns"].update(bad="not an entry"), ["channels_ns.bad"]),
        (lambda n: n.update(auth_ns={"password": {"type": "str", "value": "x"}}), ["excluded namespace"]),
        (lambda n: n.update(factory_ns={}), ["excluded namespace", "factory_ns"]),
    ],
)
def test_corrupt_backups_are_refused_naming_the_key(mutate: Any, fragments: list[str]) -> None:
    doc = device_backup()
    mutate(doc["nvs"])
    message = rejected(doc)
    assert all(f in message for f in fragments), message
    assert MQTT_PASSWORD not in message and INFLUX_TOKEN not in message


def test_every_problem_is_named_at_once() -> None:
    doc = device_backup()
    doc["nvs"]["channels_ns"]["role_3"]["value"] = 9
    doc["nvs"]["custom_mqtt_ns"]["port"]["value"] = 0
    message = rejected(doc)
    assert "channels_ns.role_3" in message and "custom_mqtt_ns.port" in message


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(version=2), "Invalid backup format"),
        (lambda d: d.update(type="filesystem"), "Invalid backup format"),
        (lambda d: d.update(nvs=[]), "nvs must be an object"),
        (lambda d: d.pop("firmwareVersion"), "Backup missing firmware version"),
        (lambda d: d.update(firmwareVersion="3.0.0"), "Firmware version incompatible"),
        (lambda d: d.update(firmwareVersion="1.0.3"), "Firmware version incompatible"),
        (lambda d: d.update(firmwareVersion="0.1.0"), "Firmware version incompatible"),
        (lambda d: d.update(firmwareVersion="two"), "not a version"),
    ],
)
def test_foreign_and_malformed_documents_are_refused(mutate: Any, fragment: str) -> None:
    doc = device_backup()
    mutate(doc)
    assert fragment in rejected(doc)


def test_device_id_is_checked_unless_forced() -> None:
    doc = device_backup()
    assert "Device ID mismatch" in rejected(doc, force=False)
    assert check_device_document(doc, "000000000000", VERSION, force=True).deviceId == DEVICE_ID


def test_format_detection() -> None:
    assert is_device_document(device_backup())
    own = {"version": 1, "type": "configuration", "configuration": {}, "nvs": {}}
    assert not is_device_document(own)  # homemeter's own section wins
    assert not is_device_document([]) and not is_device_document({"type": "configuration"})


def changed_config() -> AppConfig:
    config = mapped(device_backup()).config
    mqtt = config.mqtt.model_copy(update={"password": SecretStr("pw-1")})
    return config.model_copy(update={"mqtt": mqtt, "sampleTime": 400})


def test_the_device_schema_homemeter_writes_reads_back_to_the_same_configuration() -> None:
    config = changed_config()
    energy = [EnergyTotals(float(i), 1.5, 2.5, 3.5, 4.5) for i in range(17)]
    nvs = device_nvs(config, energy, ("INFO", "ERROR"), reveal=True)
    doc = {"version": 1, "type": "configuration", "firmwareVersion": "2.2.1", "deviceId": "x", "nvs": nvs}
    settings = map_backup(check_device_document(doc, "x", VERSION, False).nvs, factory())
    assert settings.config == config
    assert [settings.energy[i] for i in range(17)] == energy
    assert settings.log_levels == ("INFO", "ERROR")
    assert set(settings.skipped) == {"led_ns.brightness"}
    assert nvs["channels_ns"]["role_1"] == {"type": "u8", "value": 2}
    assert nvs["ade7953_ns"]["sample_time"] == {"type": "u64", "value": 400}
    assert nvs["energy_ns"]["ch3_actImp"] == {"type": "double", "value": 3.0}


def test_masked_secrets_in_the_device_schema_keep_the_stored_ones() -> None:
    config = changed_config()
    masked = device_nvs(config, [], ("INFO", "INFO"), reveal=False)
    assert masked["custom_mqtt_ns"]["password"]["value"] == PLACEHOLDER
    assert masked["influxdb_ns"]["token"]["value"] == PLACEHOLDER
    doc = {"version": 1, "type": "configuration", "firmwareVersion": "2.2.1", "nvs": masked}
    restored = map_backup(check_device_document(doc, "", VERSION, True).nvs, config).config
    assert restored.mqtt.password.get_secret_value() == "pw-1"
    assert restored.influxdb.token.get_secret_value() == INFLUX_TOKEN


def test_a_homemeter_backup_may_carry_homemeters_version() -> None:
    doc = {"version": 1, "type": "configuration", "firmwareVersion": VERSION, "configuration": {}}
    doc["nvs"] = copy.deepcopy(device_backup()["nvs"])
    assert check_device_document(doc, "", VERSION, force=True).firmwareVersion == VERSION


def test_energy_is_only_ever_raised() -> None:
    own = {0: EnergyTotals(5000.0, 0.0, 10.0, 0.0, 6000.0), 1: EnergyTotals(1.0, 1.0, 1.0, 1.0, 1.0)}
    device = {0: EnergyTotals(1000.0, 50.0, 20.0, 0.0, 1100.0), 1: EnergyTotals(0.5, 0.5, 0.5, 0.5, 0.5)}
    changes, unchanged = energy_changes(own, device)
    assert changes == {0: EnergyTotals(5000.0, 50.0, 20.0, 0.0, 6000.0)}
    assert unchanged == [1]
    assert energy_changes({**own, **changes}, device) == ({}, [0, 1])  # a re-run changes nothing
    changes, _ = energy_changes(own, {}, reset=frozenset({1}))
    assert changes == {1: EnergyTotals()}  # a role change starts the channel from zero
    assert raised(EnergyTotals(1, 2, 3, 4, 5), EnergyTotals(5, 4, 3, 2, 1)) == EnergyTotals(5, 4, 3, 4, 5)
