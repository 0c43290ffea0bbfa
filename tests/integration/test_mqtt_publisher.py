"""The MQTT publisher component on its own (a meter driven by the test) and the service beside a
broker that accepts connections but never answers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from homemeter.component import Context
from homemeter.config.app import AppConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.config.settings import Settings
from homemeter.integrations.mqtt import connection, publisher
from homemeter.integrations.mqtt.publisher import MqttPublisher
from homemeter.system.issues import IssueRegistry
from tests.integration.conftest import RunningService
from tests.integration.mosquitto import Subscriber, mosquitto
from tests.integration.test_mqtt import wait_status
from tests.unit.sources import ConstantSource
from tests.unit.test_accounting import make_meter


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_nothing_is_published_while_no_channel_has_a_reading(tmp_path: Path) -> None:
    meter = make_meter(ConstantSource(power={0: 100.0, 1: 50.0, 2: 25.0}))
    assert not list(meter.latest.with_readings())  # nothing read yet: meter-values would be []
    with mosquitto(tmp_path / "broker") as broker, Subscriber(broker, "t", "t/availability") as sub:
        cfg = MqttConfig(enabled=True, server="127.0.0.1", port=broker.port, topic="t", frequency=0,
                         haDiscovery=False)  # fmt: skip
        config = AppConfig(channels=meter.channels, mqtt=cfg)
        ctx = Context(Settings(data_dir=tmp_path), config, meter, IssueRegistry(), "0123456789ab",
                      database=None, http_port=0)  # type: ignore[arg-type]  # fmt: skip
        async with MqttPublisher(ctx) as mqtt:
            online = await asyncio.to_thread(sub.get, "t/availability")
            assert online.payload == b"online"
            await asyncio.sleep(2.2)  # two ticks at frequency 0 (an absence needs a bounded wait)
            assert sub.messages.empty() and mqtt.counters.get("published", 0) == 0
            meter.simulate(2.0)  # readings now: the next tick publishes
            first = await asyncio.to_thread(sub.get, "t")
            assert [c["index"] for c in orjson.loads(first.payload)] == [0, 1, 2]
            await until(lambda: mqtt.counters.get("published", 0) >= 1)


@pytest.fixture
def silent_broker() -> Iterator[socket.socket]:
    """Accepts TCP connections and never answers: a broker that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


@pytest.mark.serial  # measures timing: runs alone (tests/conftest.py)
def test_a_hanging_broker_blocks_neither_the_api_nor_the_meter(
    service: RunningService, silent_broker: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "CONNACK_TIMEOUT_S", 2)
    monkeypatch.setattr(publisher, "STOP_WAIT_S", 1.0)
    port = silent_broker.getsockname()[1]
    body = {"enabled": True, "server": "127.0.0.1", "port": port, "frequency": 0}
    r = service.request("PATCH", "/api/v1/custom-mqtt/config", json=body)
    assert r.status_code == 200
    seq = service.runtime.meter.latest.seq
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # while the connect waits for a CONNACK that never comes
        t0 = time.monotonic()
        assert service.get("/api/v1/ade7953/meter-values").ok
        assert time.monotonic() - t0 < 0.5
    assert service.runtime.meter.latest.seq > seq + 3  # sampling went on
    text = wait_status(service, "^Connection failed")
    assert f"MQTT_CONNECTION_TIMEOUT: no answer from 127.0.0.1:{port} within 2 s" in text, text
    # A change while a connect hangs is applied at once (the hanging attempt is abandoned).
    t0 = time.monotonic()
    r = service.request("PATCH", "/api/v1/custom-mqtt/config", json={"enabled": False})
    assert r.status_code == 200 and time.monotonic() - t0 < 3
    assert service.get("/api/v1/custom-mqtt/status").json()["status"] == "Disabled"
