"""Moving from an EnergyMe-Home device over REST: its configuration backup restored live, and the
device's schema in homemeter's own backup (secrets masked unless asked for; both formats restore)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.device_backups import DEVICE_ID, INFLUX_TOKEN, MQTT_PASSWORD, device_backup
from tests.integration.conftest import RunningService, module_service

API = "/api/v1"
DEVICE_NAMESPACES = {
    "ade7953_ns",
    "channels_ns",
    "energy_ns",
    "custom_mqtt_ns",
    "influxdb_ns",
    "led_ns",
    "udp_log_ns",
    "adv_log_ns",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One service for the refusals: each must leave it unchanged anyway."""
    yield from module_service(tmp_path_factory)


def restore(service: RunningService, doc: Any, query: str = "?force=true") -> requests.Response:
    data = json.dumps(doc).encode()
    return service.request("POST", f"{API}/restore/configuration{query}", files={"file": ("b.json", data)})


def energy(service: RunningService, index: int) -> dict[str, float]:
    body: dict[str, float] = service.get(f"{API}/ade7953/meter-values?index={index}").json()
    return body


def test_a_device_backup_restores_live_and_names_what_it_skipped(service: RunningService) -> None:
    high = {"activeEnergyImported": 10**9, "activeEnergyExported": 0.0, "reactiveEnergyImported": 0.0}
    high |= {"reactiveEnergyExported": 0.0, "apparentEnergy": 10**9}
    assert service.request("PUT", f"{API}/ade7953/energy", json={"channel": 7, **high}).status_code == 200

    response = restore(service, device_backup())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and "Device configuration restored from 588c81c47a50" in body["message"]
    assert {"wifi_ns.ip", "wifi_ns.useStatic", "led_ns.brightness", "button_ns.pressCount"} <= set(
        body["skipped"]
    )
    assert {"crashmonitor_ns.crashCount", "time_ns.tzOffset", "mqtt_ns.cloudEnabled"} <= set(body["skipped"])
    assert set(body["skippedReasons"]) == set(body["skipped"])
    assert "channels_ns.label_1" not in body["skipped"] and "adv_log_ns.printLevel" not in body["skipped"]

    channels = service.get(f"{API}/ade7953/channel").json()
    assert [c["label"] for c in channels] == [f"Circuit {i}" for i in range(17)]
    assert [c["role"] for c in channels[:5]] == ["grid", "pv", "battery", "inverter", "load"]
    assert (
        channels[4]["reverse"] is True and channels[1]["phase"] == 2 and channels[1]["groupLabel"] == "Room 1"
    )
    assert channels[0]["ctSpecification"] == {
        "currentRating": 50.0,
        "voltageOutput": 1.0,
        "scalingFraction": 0.0,
    }
    assert service.services.meter.latest.channels[1].label == "Circuit 1"  # live in the meter too
    mqtt = service.get(f"{API}/custom-mqtt/config").json()
    assert (mqtt["enabled"], mqtt["topic"], mqtt["clientid"], mqtt["password"]) == (
        True,
        "house/energy",
        "energyme-kitchen",
        "********",
    )
    influx = service.get(f"{API}/influxdb/config").json()
    assert (influx["version"], influx["database"], influx["token"]) == (1, "energy", "********")
    stored = (service.data_dir / "config.json").read_text()
    assert MQTT_PASSWORD in stored and INFLUX_TOKEN in stored
    assert MQTT_PASSWORD not in response.text
    assert service.get(f"{API}/ade7953/sample-time").json() == {"sampleTime": 1000}
    assert service.get(f"{API}/ade7953/config").json()["aVGain"] == 4_100_000
    assert service.get(f"{API}/logs/level").json() == {"print": "WARNING", "save": "ERROR"}
    assert service.get(f"{API}/logs-udp-destination").json()["destination"] == "192.168.1.20"
    assert service.get(f"{API}/led/brightness").json()["brightness"] == 75  # skipped, not applied

    assert energy(service, 3)["activeEnergyImported"] >= 4000.0  # the device's total, then growing
    assert energy(service, 3)["apparentEnergy"] >= 4400.0
    assert energy(service, 7)["activeEnergyImported"] >= 10**9  # homemeter's higher total kept
    assert energy(service, 7)["activeEnergyExported"] >= 800.0  # ... and each lower counter raised


@pytest.mark.parametrize(
    ("mutate", "query", "fragment"),
    [
        (lambda d: None, "", "Device ID mismatch: backup from 588c81c47a50"),
        (lambda d: d.update(firmwareVersion="3.0.1"), "?force=true", "Firmware version incompatible"),
        (lambda d: d["nvs"].update(auth_ns={}), "?force=true", "excluded namespace"),
        (lambda d: d["nvs"]["channels_ns"]["role_2"].update(value=12), "?force=true", "channels_ns.role_2"),
        (lambda d: d["nvs"]["influxdb_ns"]["port"].update(type="str"), "?force=true", "influxdb_ns.port"),
        (lambda d: d["nvs"].update(channels_ns=[]), "?force=true", "channels_ns"),
    ],
)
def test_refused_device_backups_change_nothing(
    shared: RunningService, mutate: Any, query: str, fragment: str
) -> None:
    before = (shared.data_dir / "config.json").read_bytes()
    labels = [c["label"] for c in shared.get(f"{API}/ade7953/channel").json()]
    doc = device_backup()
    mutate(doc)
    response = restore(shared, doc, query)
    assert response.status_code == 400 and fragment in response.json()["error"], response.text
    assert (shared.data_dir / "config.json").read_bytes() == before
    assert [c["label"] for c in shared.get(f"{API}/ade7953/channel").json()] == labels


def test_the_backup_carries_the_devices_schema_and_both_halves_restore(service: RunningService) -> None:
    secret = "own-broker-secret-31"
    service.request("PATCH", f"{API}/custom-mqtt/config", json={"password": secret, "server": "127.0.0.1"})
    service.request("PATCH", f"{API}/ade7953/channel", json={"index": 2, "label": "Heat pump", "role": "pv"})
    response = service.get(f"{API}/backup/configuration")
    doc = response.json()
    assert {"version", "type", "deviceId", "firmwareVersion", "sketchMD5", "timestamp", "nvs"} <= set(doc)
    info = service.get(f"{API}/system/info").json()
    assert doc["sketchMD5"] == info["static"]["firmware"]["sketchMD5"]
    nvs = doc["nvs"]
    assert set(nvs) == DEVICE_NAMESPACES
    assert nvs["channels_ns"]["label_2"] == {"type": "str", "value": "Heat pump"}
    assert nvs["channels_ns"]["role_2"] == {"type": "u8", "value": 2}
    assert nvs["custom_mqtt_ns"]["server"] == {"type": "str", "value": "127.0.0.1"}
    assert nvs["energy_ns"]["ch0_actImp"]["type"] == "double" and len(nvs["energy_ns"]) == 5 * 17
    assert secret not in response.text and nvs["custom_mqtt_ns"]["password"]["value"] == "********"
    revealed = service.get(f"{API}/backup/configuration?secrets=true")
    assert revealed.json()["nvs"]["custom_mqtt_ns"]["password"]["value"] == secret
    assert revealed.json()["configuration"]["mqtt"]["password"] == secret

    # homemeter's own restore still reads the document (its own section wins) ...
    service.request("PATCH", f"{API}/ade7953/channel", json={"index": 2, "label": "Changed"})
    assert restore(service, doc, "").status_code == 200
    assert service.get(f"{API}/ade7953/channel?index=2").json()["label"] == "Heat pump"
    # ... and its device half alone is a device backup that restores the same settings.
    device_half = {k: v for k, v in copy.deepcopy(doc).items() if k != "configuration"}
    device_half["firmwareVersion"] = "2.2.1"
    device_half["nvs"]["channels_ns"]["label_2"]["value"] = "From nvs"
    service.request("PATCH", f"{API}/custom-mqtt/config", json={"server": "localhost"})
    response = restore(service, device_half, "")  # its deviceId is ours: no force needed
    assert response.status_code == 200, response.text
    assert response.json()["skipped"] == ["led_ns.brightness"]
    assert service.get(f"{API}/ade7953/channel?index=2").json()["label"] == "From nvs"
    assert service.get(f"{API}/custom-mqtt/config").json()["server"] == "127.0.0.1"
    assert secret in (service.data_dir / "config.json").read_text()  # the masked secret kept


def test_a_device_backup_for_this_device_id_needs_no_force(service: RunningService) -> None:
    doc = device_backup(device_id=service.services.device_id)
    assert restore(service, doc, "").status_code == 200
    assert service.services.device_id != DEVICE_ID
