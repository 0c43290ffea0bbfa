"""MQTT status texts and discovery names: the device's formats, Home Assistant's id rules."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from homemeter.config.mqtt import MqttConfig
from homemeter.integrations.mqtt.connection import backoff
from homemeter.integrations.mqtt.discovery import REMOVED, Topics, discovery_message, object_id
from homemeter.integrations.mqtt.ha_state import StateFloor
from homemeter.meter.quantities import QUANTITIES
from homemeter.timestamps import duration
from tests.unit.sources import ConstantSource
from tests.unit.test_accounting import make_meter


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250 ms"), (5, "5 s"), (59, "59 s"), (80, "1 min"), (3600, "1 h"), (2 * 86_400, "2 d")],
)
def test_duration_is_the_devices_format(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_backoff_doubles_from_5_s_and_stops_at_a_minute() -> None:
    assert [backoff(n) for n in range(1, 8)] == [5, 10, 20, 40, 60, 60, 60]
    assert backoff(10_000) == 60  # no overflow after many failures (device weakness 6.2.11)


def test_discovery_has_a_sensor_per_quantity_and_removes_what_it_is_told() -> None:
    meter = make_meter(ConstantSource(power={0: 100.0, 1: 50.0, 2: 25.0}), n=3)
    meter.simulate(2.0)
    topics = Topics.of(MqttConfig(topic="house/meter"), "a1:b2")
    doc = orjson.loads(discovery_message(meter.latest, topics, "a1:b2", removed=[7]))
    assert topics.discovery == "homeassistant/device/homemeter_a1_b2/config" == (
        f"homeassistant/device/{object_id('a1:b2')}/config")  # fmt: skip
    components = doc["cmps"]
    assert len(components) == 3 * len(QUANTITIES) + len(QUANTITIES) + 1  # 3 channels, 7 removed, grid
    removed = {k for k, v in components.items() if v == REMOVED}
    assert removed == {f"homemeter_a1_b2_ch7_{q.key}" for q in QUANTITIES}
    sensor = components["homemeter_a1_b2_ch1_activeEnergyImported"]
    assert sensor["name"] == "Channel 1 active energy imported"
    assert sensor["state_topic"] == "house/meter/channel/1"
    assert sensor["value_template"] == "{{ value_json.activeEnergyImported }}"


def test_home_assistant_energy_never_goes_down_unless_the_meter_was_reset() -> None:
    meter = make_meter(ConstantSource(power={0: 1000.0, 1: 50.0, 2: 25.0}), n=3)
    meter.simulate(60.0)
    channel = meter.latest.channels[0]
    live = channel.active_energy_imported
    floor = StateFloor()
    floor.learn(0, orjson.dumps({"activeEnergyImported": live + 5.0, "voltage": 1.0}))  # read back
    floor.learn(0, b"not json")
    state = orjson.loads(floor.state(channel))
    assert state["activeEnergyImported"] == live + 5.0  # stands still until the meter catches up
    assert state["voltage"] == round(channel.voltage, 1)  # other values are live
    meter.simulate(60.0)
    assert orjson.loads(floor.state(meter.latest.channels[0]))["activeEnergyImported"] > live + 5.0
    # A deliberate reset is let through: Home Assistant should see a new cycle.
    asyncio.run(meter.reset_energy(0))
    floor.forget_dropped(meter.latest.channels)
    assert orjson.loads(floor.state(meter.latest.channels[0]))["activeEnergyImported"] == 0.0
