"""The custom MQTT publisher against a real Mosquitto (tests/integration/mosquitto.py).

Every test configures the running service the way a user does, over `/api/v1/custom-mqtt/config`,
and watches what a real subscriber receives and what the status endpoint says.
"""

from __future__ import annotations

import itertools
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from homemeter.integrations.mqtt import publisher
from homemeter.meter.payloads import meter_values
from tests.integration.conftest import RunningService, start_service
from tests.integration.mosquitto import Broker, Subscriber, mosquitto
from tests.loopback import free_port, wait_until

MQTT = "/api/v1/custom-mqtt"
TOPIC = "home/energy"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path / "broker") as running:
        yield running


def configure(service: RunningService, **fields: Any) -> None:
    r = service.request("PATCH", f"{MQTT}/config", json=fields)
    assert r.status_code == 200, r.text


def device_body(broker: Broker, **changes: Any) -> dict[str, Any]:
    """What the device's own web page sends: the nine fields, nothing of homemeter's."""
    body = {
        "enabled": True, "server": "127.0.0.1", "port": broker.port, "clientid": "", "topic": TOPIC,
        "frequency": 0, "useCredentials": False, "username": "", "password": "",
    }  # fmt: skip
    return body | changes


def status(service: RunningService) -> str:
    text: str = service.get(f"{MQTT}/status").json()["status"]
    return text


def wait_status(service: RunningService, pattern: str, timeout: float = 15) -> str:
    return wait_until(lambda: re.search(pattern, s := status(service)) and s, timeout, what=pattern)


def energies(payload: bytes) -> dict[tuple[int, str], float]:
    return {(c["index"], k): v for c in orjson.loads(payload) for k, v in c["data"].items() if "Energy" in k}


def test_publishes_the_rest_body_on_the_configured_topic_qos0_not_retained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker
) -> None:
    service = start_service(tmp_path / "data", monkeypatch, speed=1)
    try:
        # One snapshot a minute: the REST body and the next message come from the same snapshot.
        assert service.request("PUT", "/api/v1/ade7953/sample-time", json={"sampleTime": 60_000}).ok
        with Subscriber(broker, TOPIC, f"{TOPIC}/#") as sub:
            r = service.request("PUT", f"{MQTT}/config", json=device_body(broker))
            assert r.status_code == 200, r.text
            wait_status(service, "^Connected$")
            meter = service.runtime.meter
            for _ in range(3):  # a new snapshot may fall between the two reads: then read again
                sub.get(TOPIC)
                seq = meter.latest.seq
                rest = service.get("/api/v1/ade7953/meter-values").content
                message = sub.get(TOPIC)
                if meter.latest.seq == seq:
                    break
            assert message.payload == rest
            assert message.payload == orjson.dumps(meter_values(meter.latest))
            assert (message.qos, message.retain) == (0, False)
        # Not retained: a new subscriber finds nothing stored on the topic.
        with Subscriber(broker, TOPIC) as late:
            first = late.get(TOPIC, timeout=5)
            assert not first.retain
        stats = service.get("/api/v1/system/statistics").json()["customMqtt"]
        assert stats["messagesPublished"] >= 3 and stats["messagesPublishedError"] == 0
    finally:
        service.stop()


@pytest.mark.serial  # measures timing: runs alone (tests/conftest.py)
@pytest.mark.parametrize(("frequency", "period"), [(0, 1.0), (2, 2.0)])
def test_cadence_follows_frequency(
    service: RunningService, broker: Broker, frequency: int, period: float
) -> None:
    with Subscriber(broker, TOPIC) as sub:
        configure(service, **device_body(broker, frequency=frequency))
        arrivals = [sub.get(TOPIC).at for _ in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(period - 0.35 <= gap <= period + 0.6 for gap in gaps), gaps


def test_enabled_needs_a_server_and_the_default_has_none(service: RunningService) -> None:
    assert service.get(f"{MQTT}/config").json()["server"] == ""
    r = service.request("PATCH", f"{MQTT}/config", json={"enabled": True})
    assert r.status_code == 400
    assert re.search(r"(^|: )server: required when enabled", r.json()["error"]), r.json()
    assert status(service) == "Disabled"


def test_each_failure_has_its_own_honest_reason(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests never reach the network, not even DNS: the resolver answers "no such name" for this one
    # host itself (the service runs in this process), as a DNS server would.
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "broker.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    configure(service, enabled=True, server="broker.invalid", port=1883)
    text = wait_status(service, "^Connection failed")
    assert text == ("Connection failed: MQTT_CONNECT_FAILED: unknown host 'broker.invalid' "
                    "(Name or service not known) (Attempt 1). Retrying in 5 s"), text  # fmt: skip
    r = service.request("PATCH", f"{MQTT}/config", json={"server": "mqtt://broker.lan"})
    assert r.status_code == 400 and "server: " in r.json()["error"]
    port = free_port()  # nothing listens there
    configure(service, server="127.0.0.1", port=port)
    text = wait_status(service, "^Connection failed")
    assert f"connection refused by 127.0.0.1:{port}" in text and "(Attempt 1)" in text, text
    text = wait_status(service, r"\(Attempt 2\)", timeout=10)
    assert text.endswith("Retrying in 10 s"), text  # 5 s doubling
    health = service.services.components.get("mqtt")
    assert health is not None and health.status().state.value == "degraded"


def test_credentials_accepted_and_a_wrong_password_rejected(tmp_path: Path, service: RunningService) -> None:
    with mosquitto(tmp_path / "auth", users={"meter": "s3cret-pw"}) as broker:
        configure(service, **device_body(broker, useCredentials=True, username="meter",
                                         password="wrong-pw"))  # fmt: skip
        text = wait_status(service, "^Connection failed")
        assert re.search(r"MQTT_CONNECT_(BAD_CREDENTIALS|UNAUTHORIZED): .*(username or password)", text), text
        with Subscriber(broker, TOPIC, auth=("meter", "s3cret-pw")) as sub:
            configure(service, password="s3cret-pw")
            wait_status(service, "^Connected$")
            assert orjson.loads(sub.get(TOPIC).payload)
        assert "s3cret-pw" not in service.get(f"{MQTT}/config").text


def test_tls_with_the_right_ca_and_refused_with_another(tmp_path: Path, service: RunningService) -> None:
    with mosquitto(tmp_path / "tls", tls=True) as broker:
        assert broker.tls is not None
        with Subscriber(broker, TOPIC, ca=broker.tls.ca) as sub:
            configure(service, **device_body(broker), useTls=True, caFile=str(broker.tls.ca))
            wait_status(service, "^Connected$")
            assert orjson.loads(sub.get(TOPIC).payload)
        configure(service, caFile=str(broker.tls.other_ca))
        text = wait_status(service, "^Connection failed")
        assert "TLS certificate of 127.0.0.1" in text and "certificate verify failed" in text, text
        # Verification off: encrypted but not authenticated, on the user's explicit request.
        configure(service, verifyCertificate=False)
        wait_status(service, "^Connected$")
        # Plain MQTT against the TLS port: the handshake never happens.
        configure(service, useTls=False)
        assert wait_status(service, "^Connection failed", timeout=45)  # after the connect timeout


def test_an_unreadable_ca_file_is_refused_and_nothing_changes(
    service: RunningService, broker: Broker
) -> None:
    configure(service, **device_body(broker))
    before = service.get(f"{MQTT}/config").json()
    r = service.request("PATCH", f"{MQTT}/config", json={"useTls": True, "caFile": "/nonexistent/ca.pem"})
    assert r.status_code == 409 and r.json()["error"].startswith("caFile: cannot use /nonexistent/ca.pem")
    assert service.get(f"{MQTT}/config").json() == before
    r = service.request("PATCH", f"{MQTT}/config", json={"caFile": "relative.pem"})
    assert r.status_code == 400 and "caFile: " in r.json()["error"]


def test_broker_outage_status_follows_publishing_resumes_totals_never_drop(
    tmp_path: Path, service: RunningService, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "CONNECT_ISSUE_AFTER_S", 1.0)
    seen: list[bytes] = []
    configure(service, **device_body(broker))
    wait_status(service, "^Connected$")
    with Subscriber(broker, TOPIC) as sub:
        seen += [sub.get(TOPIC).payload for _ in range(2)]
    broker.stop()
    text = wait_status(service, "^Connection failed")
    assert "MQTT_CONNECTION_LOST" in text or "connection refused" in text, text
    wait_status(service, r"connection refused by 127\.0\.0\.1")
    issues = lambda: {i["code"]: i for i in service.get("/api/v1/system/issues").json()["issues"]}  # noqa: E731
    wait_until(lambda: "custom_mqtt_connect_failed" in issues(), 10, what="the connect issue")
    broker.start()
    restarted = time.monotonic()
    with Subscriber(broker, TOPIC) as sub:
        seen.append(sub.get(TOPIC, timeout=12).payload)
        assert time.monotonic() - restarted < 10.5
        assert status(service) == "Connected"
        assert issues()["custom_mqtt_connect_failed"]["state"] == "cleared_unacked"
        seen.append(sub.get(TOPIC).payload)
    assert_never_lower(seen)


def test_totals_never_drop_across_a_service_restart(
    tmp_path: Path, service: RunningService, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(service, **device_body(broker))
    with Subscriber(broker, TOPIC) as sub:
        seen = [sub.get(TOPIC).payload for _ in range(2)]
        service.stop()
        again = start_service(service.data_dir, monkeypatch)
        try:
            seen += [sub.get(TOPIC).payload for _ in range(2)]
        finally:
            again.stop()
    assert_never_lower(seen)


def assert_never_lower(payloads: list[bytes]) -> None:
    previous: dict[tuple[int, str], float] = {}
    for payload in payloads:
        current = energies(payload)
        for key, value in current.items():
            assert value >= previous.get(key, 0.0), (key, previous[key], value)
        previous.update(current)


def test_settings_apply_live_without_a_restart(service: RunningService, broker: Broker) -> None:
    components = service.runtime.components
    configure(service, **device_body(broker))
    with Subscriber(broker, TOPIC, "elsewhere") as sub:
        sub.get(TOPIC)
        configure(service, topic="elsewhere")
        assert status(service) in ("Configuration updated", "Connected")
        sub.get("elsewhere")
        sub.drain()
        time.sleep(1.5)  # two ticks at frequency 0: nothing more on the old topic
        assert all(m.topic == "elsewhere" for m in list(sub.messages.queue))
    assert service.runtime.components is components and service.thread.is_alive()


def test_a_clean_stop_says_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker) -> None:
    service = start_service(tmp_path / "data", monkeypatch)
    try:
        configure(service, **device_body(broker))
        with Subscriber(broker, f"{TOPIC}/availability") as sub:
            assert sub.get().payload == b"online"
            service.stop()
            offline = sub.get()
            assert (offline.payload, offline.retain) == (b"offline", False)  # live delivery
        with Subscriber(broker, f"{TOPIC}/availability") as late:
            kept = late.get()
            assert (kept.payload, kept.retain) == (b"offline", True)
    finally:
        service.stop()
