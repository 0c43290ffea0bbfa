"""The MQTT last will: when homemeter dies without a DISCONNECT, the broker says `offline` for it."""

from __future__ import annotations

import signal
from pathlib import Path

from homemeter.config.app import AppConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.meter.sources.simulator import default_channel_configs
from homemeter.store.config import ConfigStore
from tests.e2e.conftest import Service
from tests.integration.mosquitto import Subscriber, mosquitto


def test_kill_9_leaves_offline_on_the_availability_topic(
    service_factory: type[Service], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with mosquitto(tmp_path / "broker") as broker, Subscriber(broker, "energyme/availability") as sub:
        mqtt = MqttConfig(enabled=True, server="127.0.0.1", port=broker.port, frequency=0)
        ConfigStore(data).save(AppConfig(channels=tuple(default_channel_configs(17)), mqtt=mqtt))
        svc = service_factory(data).start()
        assert sub.get(timeout=15).payload == b"online"
        svc.stop(signal.SIGKILL)
        # A killed process cannot say goodbye: this `offline` is the broker's, from the last will.
        will = sub.get(timeout=10)
        assert will.payload == b"offline"
        with Subscriber(broker, "energyme/availability") as late:  # and it is kept (retained)
            assert late.get().payload == b"offline"
