"""Home Assistant MQTT discovery against a real Mosquitto, checked the way Home Assistant reads it.

`ha_load` applies the rules of Home Assistant's MQTT integration to a device-based discovery message:
abbreviations expanded, `device` with an identifier, `origin` with a name, `components` each with a
supported platform, a `unique_id` per component, the sensor device class / unit / state class
combinations it accepts, and the Energy dashboard's requirements for energy sensors. These tables
are Home Assistant's, written here independently of `homemeter.meter.quantities` on purpose: the
test must not pass just because it reads the same table as the code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.conftest import RunningService, start_service
from tests.integration.mosquitto import Broker, Subscriber, mosquitto

MQTT = "/api/v1/custom-mqtt"
TOPIC = "energy"
PREFIX = "homeassistant"

# Home Assistant (homeassistant/components/mqtt/abbreviations.py and sensor/const.py).
ABBREVIATIONS = {"cmps": "components", "dev": "device", "o": "origin", "p": "platform",
                 "avty_t": "availability_topic", "stat_t": "state_topic", "uniq_id": "unique_id"}  # fmt: skip
DEVICE_CLASS_UNITS: dict[str, set[str | None]] = {
    "power": {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},
    "reactive_power": {"mvar", "var", "kvar"},
    "apparent_power": {"mVA", "VA", "kVA"},
    "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal",
               "Gcal"},
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "current": {"A", "mA"},
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "power_factor": {None, "%"},
}  # fmt: skip
STATE_CLASSES_OF = {"energy": {"total", "total_increasing"}}  # others: any of the three
ENERGY_DASHBOARD_UNITS = {"Wh", "kWh", "MWh", "GJ", "MJ"}


def ha_load(topic: str, payload: bytes) -> dict[str, Any]:
    """The device discovery message as Home Assistant's MQTT integration accepts it, or an error."""
    match = re.fullmatch(rf"{PREFIX}/device/([a-zA-Z0-9_-]+)/config", topic)
    assert match, f"not a device discovery topic: {topic}"
    doc = {ABBREVIATIONS.get(k, k): v for k, v in orjson.loads(payload).items()}
    device, origin, components = doc["device"], doc["origin"], doc["components"]
    assert device.get("identifiers") or device.get("connections"), "device needs an identifier"
    assert isinstance(origin.get("name"), str) and origin["name"], "origin needs a name"
    assert isinstance(doc.get("availability_topic"), str)
    assert doc.get("qos", 0) in (0, 1, 2)
    loaded: dict[str, Any] = {}
    for component_id, raw in components.items():
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", component_id), component_id
        config = {ABBREVIATIONS.get(k, k): v for k, v in raw.items()}
        assert config["platform"] == "sensor"
        if set(config) == {"platform"}:
            loaded[component_id] = None  # a removal
            continue
        assert config["unique_id"], "device discovery components need a unique_id"
        assert isinstance(config.get("state_topic", doc.get("state_topic")), str)
        device_class, unit = config.get("device_class"), config.get("unit_of_measurement")
        state_class = config.get("state_class")
        assert state_class in ("measurement", "total", "total_increasing"), config
        if device_class is not None:
            assert unit in DEVICE_CLASS_UNITS[device_class], (component_id, device_class, unit)
            assert state_class in STATE_CLASSES_OF.get(device_class, {state_class}), config
        loaded[component_id] = config
    availability = doc["availability_topic"]
    return {"device": device, "origin": origin, "components": loaded, "availability": availability}


def energy_dashboard_accepts(config: dict[str, Any]) -> bool:
    """What the Energy dashboard lists as grid/solar/battery energy sensors."""
    return (
        config.get("device_class") == "energy"
        and config.get("state_class") in ("total", "total_increasing")
        and config.get("unit_of_measurement") in ENERGY_DASHBOARD_UNITS
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path / "broker") as running:
        yield running


def enable(service: RunningService, broker: Broker, **extra: Any) -> None:
    body = {"enabled": True, "server": "127.0.0.1", "port": broker.port, "topic": TOPIC, "frequency": 0}
    r = service.request("PATCH", f"{MQTT}/config", json=body | extra)
    assert r.status_code == 200, r.text


def next_discovery(sub: Subscriber, timeout: float = 10) -> tuple[str, dict[str, Any]]:
    message = sub.get(timeout=timeout)
    assert message.topic.startswith(f"{PREFIX}/device/"), message.topic
    return message.topic, ha_load(message.topic, message.payload)


def channel_components(loaded: dict[str, Any], index: int) -> dict[str, Any]:
    return {k: v for k, v in loaded["components"].items() if k.split("_")[-2] == f"ch{index}"}


def test_discovery_is_what_home_assistant_loads(service: RunningService, broker: Broker) -> None:
    enable(service, broker)
    active = [c["index"] for c in service.get("/api/v1/ade7953/channel").json() if c["active"]]
    with Subscriber(broker, f"{PREFIX}/device/+/config") as sub:
        next_discovery(sub)
    with Subscriber(broker, f"{PREFIX}/device/+/config") as late:  # retained: Home Assistant may start later
        message = late.get()
        topic, loaded = message.topic, ha_load(message.topic, message.payload)
    assert message.retain
    assert topic == f"{PREFIX}/device/homemeter_{service.services.device_id}/config"
    assert loaded["availability"] == f"{TOPIC}/availability"
    sensors = {k: v for k, v in loaded["components"].items() if v is not None}
    # Eleven quantities per active channel, plus the grid frequency.
    assert len(sensors) == 11 * len(active) + 1
    for index in active:
        mine = channel_components(loaded, index)
        assert len(mine) == 11 and all(v["state_topic"] == f"{TOPIC}/channel/{index}" for v in mine.values())
        by_key = {k.rsplit("_", 1)[1]: v for k, v in mine.items()}
        # Imported and exported active energy reach the Energy dashboard; reactive/apparent do not
        # claim the energy class (Home Assistant rejects it with varh/VAh).
        assert energy_dashboard_accepts(by_key["activeEnergyImported"])
        assert energy_dashboard_accepts(by_key["activeEnergyExported"])
        for key, unit in (("reactiveEnergyImported", "varh"), ("apparentEnergy", "VAh")):
            assert by_key[key]["unit_of_measurement"] == unit and "device_class" not in by_key[key]
            assert by_key[key]["state_class"] == "total_increasing"
        assert (by_key["activePower"]["device_class"], by_key["activePower"]["unit_of_measurement"]) == (
            "power", "W")  # fmt: skip
        assert by_key["reactivePower"]["unit_of_measurement"] == "var"
        assert by_key["apparentPower"]["unit_of_measurement"] == "VA"
    # Unique ids: device id + channel index + quantity, so they survive renames and restarts.
    assert all(k == v["unique_id"] and service.services.device_id in k for k, v in sensors.items())


def test_state_topics_carry_every_value_a_sensor_reads(service: RunningService, broker: Broker) -> None:
    enable(service, broker)
    with Subscriber(broker, f"{PREFIX}/device/+/config") as sub:
        _, loaded = next_discovery(sub)
    sensors = [v for v in loaded["components"].values() if v is not None]
    topics = sorted({s["state_topic"] for s in sensors})
    with Subscriber(broker, *topics, f"{TOPIC}/availability") as sub:
        states: dict[str, dict[str, Any]] = {}
        availability = None
        while set(states) != set(topics) or availability is None:
            message = sub.get()
            if message.topic.endswith("/availability"):
                availability = message.payload
            else:
                states[message.topic] = orjson.loads(message.payload)
    assert availability == b"online"
    for sensor in sensors:
        key = re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", sensor["value_template"])
        assert key, sensor["value_template"]
        assert isinstance(states[sensor["state_topic"]][key.group(1)], int | float), sensor


def test_deactivating_renaming_birth_and_switching_off(service: RunningService, broker: Broker) -> None:
    enable(service, broker)
    with Subscriber(broker, f"{PREFIX}/device/+/config") as sub:
        topic, first = next_discovery(sub)
        assert channel_components(first, 5)
        # Deactivating removes the channel's entities: each of its components once as {"p": "sensor"}.
        r = service.request("PATCH", "/api/v1/ade7953/channel", json={"index": 5, "active": False})
        assert r.ok, r.text
        _, second = next_discovery(sub)
        assert set(channel_components(second, 5).values()) == {None}
        assert len(channel_components(second, 5)) == 11
        # Renaming renames them (same unique ids).
        r = service.request("PATCH", "/api/v1/ade7953/channel", json={"index": 3, "label": "Heat pump"})
        assert r.ok, r.text
        _, third = next_discovery(sub)
        renamed = channel_components(third, 3)
        assert set(renamed) == set(channel_components(first, 3))
        assert all(v["name"].startswith("Heat pump ") for v in renamed.values())
        assert not channel_components(third, 5)  # removed once; not repeated
        # Home Assistant's birth message brings the discovery again.
        sub.publish(f"{PREFIX}/status", b"online")
        _, again = next_discovery(sub)
        assert again["components"].keys() >= {k for k, v in third["components"].items() if v}
        # Switching discovery off removes the device: an empty retained message replaces it.
        r = service.request("PATCH", f"{MQTT}/config", json={"haDiscovery": False})
        assert r.ok, r.text
        assert sub.get(topic).payload == b""
    with Subscriber(broker, f"{PREFIX}/device/+/config") as late, pytest.raises(AssertionError):
        late.get(topic, timeout=1.0)  # nothing retained


def test_the_first_message_after_a_restart_removes_channels_deactivated_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker
) -> None:
    service = start_service(tmp_path / "data", monkeypatch)
    try:
        enable(service, broker)
        with Subscriber(broker, f"{PREFIX}/device/+/config") as sub:
            _, first = next_discovery(sub)
        assert channel_components(first, 7)
        service.stop()
        config = (tmp_path / "data" / "config.json").read_bytes()
        doc = orjson.loads(config)
        doc["channels"][7]["active"] = False  # changed while homemeter was stopped
        (tmp_path / "data" / "config.json").write_bytes(orjson.dumps(doc))
        service = start_service(tmp_path / "data", monkeypatch)
        with Subscriber(broker, f"{PREFIX}/device/+/config") as sub:
            # The retained message from before may come first; the new service's follows it.
            _, loaded = next_discovery(sub)
            if any(channel_components(loaded, 7).values()):
                _, loaded = next_discovery(sub)
        assert len(channel_components(loaded, 7)) == 11
        assert not any(channel_components(loaded, 7).values())  # all sent as removals
    finally:
        service.stop()
