"""The MQTT publisher when homemeter dies without warning (kill -9): the broker's last will says
`offline`, and after the restart Home Assistant's energy states do not go down although the meter
resumed from its last save."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson

from homemeter.config.app import AppConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.meter.sources.simulator import default_channel_configs
from homemeter.store.config import ConfigStore
from tests.e2e.conftest import Service
from tests.integration.mosquitto import Subscriber, mosquitto

# Ten simulated minutes per second: energy grows quickly. Both runs start at the same simulated late
# morning, so the second run cannot outgrow the first by starting where the household's load steps up
# (at 06:00 it goes from 160 W to kilowatts).
FAST = ("--speed", "600", "--start-at", "2026-06-21T10:00Z")


def totals(payload: bytes) -> dict[tuple[int, str], float]:
    return {(c["index"], k): v for c in orjson.loads(payload) for k, v in c["data"].items() if "Energy" in k}


def test_kill_9_last_will_and_home_assistant_totals_never_drop(
    service_factory: type[Service], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with mosquitto(tmp_path / "broker") as broker:
        mqtt = MqttConfig(enabled=True, server="127.0.0.1", port=broker.port, frequency=0)
        # No save before the kill: after it the meter restarts from zero.
        config = AppConfig(channels=tuple(default_channel_configs(17)), mqtt=mqtt, energySaveInterval=3600)
        ConfigStore(data).save(config)
        with Subscriber(broker, "energyme", "energyme/availability", "energyme/channel/0") as sub:
            svc = service_factory(data, extra=FAST).start()
            assert sub.get("energyme/availability", timeout=15).payload == b"online"
            for _ in range(4):
                before = sub.get("energyme").payload
            ha_before = orjson.loads(sub.get("energyme/channel/0").payload)
            svc.stop(signal.SIGKILL)
            # A killed process cannot say goodbye: this `offline` is the broker's, from the last will.
            assert sub.get("energyme/availability").payload == b"offline"
            sub.drain()
            service_factory(data, extra=FAST).start()
            after = sub.get("energyme", timeout=15).payload
            ha_after = orjson.loads(sub.get("energyme/channel/0").payload)
        # The meter resumed from its last save: the meter-values array (the REST body) went down...
        assert any(totals(after)[k] < v for k, v in totals(before).items() if k[0] == 0)
        # ...but Home Assistant's energy states did not.
        for key, value in ha_before.items():
            if "Energy" in key:
                assert ha_after[key] >= value, (key, value, ha_after[key])
