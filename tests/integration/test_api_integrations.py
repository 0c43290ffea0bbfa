"""`/api/v1/custom-mqtt/*` and `/api/v1/influxdb/*` against the running service.

Settings round-trip through GET/PUT/PATCH/reset with the device's field names and defaults, are
stored in config.json and survive a restart; passwords and tokens never leave the service in clear;
bad bodies get a 400 naming the field and change nothing; the status tells the truth.
"""

from __future__ import annotations

import json
import logging
import re
import stat
import time
from typing import Any

import pytest

from tests.integration.conftest import RunningService, free_port, start_service, wait_until

MQTT = "/api/v1/custom-mqtt"
INFLUX = "/api/v1/influxdb"
MASK = "********"

MQTT_DEFAULTS = {
    "enabled": False,
    "server": "",  # the device's is a public broker: none here (enabling needs one)
    "port": 1883,
    "clientid": "energyme-home",
    "topic": "energyme",
    "frequency": 15,
    "useCredentials": False,
    "username": "username",
    "password": MASK,  # the device's default "password", masked like any non-empty secret
    # homemeter's own fields, after the device's nine
    "useTls": False,
    "caFile": "",
    "certFile": "",
    "keyFile": "",
    "verifyCertificate": True,
    "haDiscovery": True,
    "haDiscoveryPrefix": "homeassistant",
}
MQTT_EXTRAS = {k: v for k, v in MQTT_DEFAULTS.items() if k not in list(MQTT_DEFAULTS)[:9]}
# homemeter's own fields, after the device's: optional in a PUT, where a missing one is kept.
INFLUX_EXTENSIONS = {"verifySsl": True, "caFile": "", "queueMaxAge": 7}
INFLUX_DEFAULTS = {
    "enabled": False,
    "server": "localhost",
    "port": 8086,
    "version": 2,
    "database": "energyme-home",
    "username": "",
    "password": "",
    "organization": "my-org",
    "bucket": "energyme-home",
    "token": "",
    "measurement": "meter",
    "frequency": 15,
    "useSsl": False,
    **INFLUX_EXTENSIONS,
}
MQTT_BODY = {  # the device's nine fields; a loopback port where no broker listens (tests stay local)
    "enabled": True,
    "server": "127.0.0.1",
    "port": 1,
    "clientid": "",
    "topic": "home/energy",
    "frequency": 30,
    "useCredentials": True,
    "username": "meter",
    "password": "mqtt-Secret-41",
}
INFLUX_BODY = {
    "enabled": True,
    "server": "127.0.0.1",  # nothing listens on 8087: the writer fails, never reaching the network
    "port": 8087,
    "version": 1,
    "database": "house",
    "username": "writer",
    "password": "influx-Secret-42",
    "organization": "home",
    "bucket": "power",
    "token": "influx-Token-43",
    "measurement": "energy",
    "frequency": 60,
    "useSsl": True,
}
SECRETS = ("mqtt-Secret-41", "influx-Secret-42", "influx-Token-43")


def stored(service: RunningService) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((service.data_dir / "config.json").read_bytes())
    return doc


def full(body: dict[str, Any]) -> dict[str, Any]:
    """The stored object after a PUT of the device's fields only: homemeter's own keep their defaults."""
    if "clientid" in body:
        return body | MQTT_EXTRAS
    return body | INFLUX_EXTENSIONS if body.keys() == INFLUX_BODY.keys() else body


def masked(body: dict[str, Any]) -> dict[str, Any]:
    return {k: MASK if k in ("password", "token") and v else v for k, v in body.items()}


def test_defaults_are_the_devices(service: RunningService) -> None:
    assert service.get(f"{MQTT}/config").json() == MQTT_DEFAULTS
    assert service.get(f"{INFLUX}/config").json() == INFLUX_DEFAULTS
    # Key order as on the device (the web form and scripts that print it).
    assert list(service.get(f"{MQTT}/config").json()) == list(MQTT_DEFAULTS)
    assert list(service.get(f"{INFLUX}/config").json()) == list(INFLUX_DEFAULTS)


@pytest.mark.parametrize(("base", "body", "title"), [(MQTT, MQTT_BODY, "Custom MQTT"),
                                                     (INFLUX, INFLUX_BODY, "InfluxDB")])  # fmt: skip
def test_put_round_trip_masks_secrets_and_stores_them(
    service: RunningService, base: str, body: dict[str, Any], title: str
) -> None:
    r = service.request("PUT", f"{base}/config", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": f"{title} configuration updated successfully"}
    assert service.get(f"{base}/config").json() == masked(full(body))
    # The file holds the clear values (the publishers need them), readable by the owner only.
    section = "mqtt" if base == MQTT else "influxdb"
    assert stored(service)[section] == full(body)
    assert stat.S_IMODE((service.data_dir / "config.json").stat().st_mode) == 0o600


def test_secrets_never_appear_in_any_get_or_log(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the service runs in this process: its records land here too
    service.request("PUT", f"{MQTT}/config", json=MQTT_BODY).raise_for_status()
    service.request("PUT", f"{INFLUX}/config", json=INFLUX_BODY).raise_for_status()
    refused = service.request("PATCH", f"{INFLUX}/config", json={"token": SECRETS[2] + "x" * 200})
    assert refused.status_code == 400 and SECRETS[2] not in refused.text
    seen = "".join(
        service.get(p).text
        for p in (f"{MQTT}/config", f"{MQTT}/status", f"{INFLUX}/config", f"{INFLUX}/status",
                  "/openapi.json")
    )  # fmt: skip
    assert MASK in seen
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in SECRETS:
        assert secret not in seen
        assert secret not in logged


@pytest.mark.parametrize(("base", "body", "section"), [(MQTT, MQTT_BODY, "mqtt"),
                                                       (INFLUX, INFLUX_BODY, "influxdb")])  # fmt: skip
def test_sending_back_what_get_returned_keeps_the_secrets(
    service: RunningService, base: str, body: dict[str, Any], section: str
) -> None:
    service.request("PUT", f"{base}/config", json=body).raise_for_status()
    shown = service.get(f"{base}/config").json()
    # The web UI's round trip: change one field, send the whole object back, secrets still masked.
    r = service.request("PUT", f"{base}/config", json={**shown, "frequency": 45})
    assert r.status_code == 200, r.text
    assert stored(service)[section] == full({**body, "frequency": 45})
    r = service.request("PATCH", f"{base}/config", json={"password": MASK, "port": 9999})
    assert r.status_code == 200, r.text
    assert stored(service)[section] == full({**body, "frequency": 45, "port": 9999})
    # A new value replaces it, and "" clears it.
    service.request("PATCH", f"{base}/config", json={"password": "new-one"}).raise_for_status()
    assert stored(service)[section]["password"] == "new-one"
    service.request("PATCH", f"{base}/config", json={"password": ""}).raise_for_status()
    assert stored(service)[section]["password"] == ""
    assert service.get(f"{base}/config").json()["password"] == ""


def test_patch_changes_only_the_fields_given(service: RunningService) -> None:
    r = service.request("PATCH", f"{INFLUX}/config", json={"frequency": 120, "bucket": "b2"})
    assert r.status_code == 200, r.text
    assert service.get(f"{INFLUX}/config").json() == {**INFLUX_DEFAULTS, "frequency": 120, "bucket": "b2"}
    r = service.request("PATCH", f"{MQTT}/config", json={"topic": "t/1"})
    assert r.status_code == 200, r.text
    assert service.get(f"{MQTT}/config").json() == {**MQTT_DEFAULTS, "topic": "t/1"}
    assert stored(service)["mqtt"]["password"] == "password"  # untouched secret kept


def test_unknown_keys_are_ignored_as_on_the_device(service: RunningService) -> None:
    # The Feb-2026 web page sent these inside the config PUT; the device ignores unknown keys.
    body = {**MQTT_BODY, "lastConnectionStatus": "x", "lastConnectionAttemptTimestamp": "y"}
    assert service.request("PUT", f"{MQTT}/config", json=body).status_code == 200
    assert stored(service)["mqtt"] == full(MQTT_BODY)


@pytest.mark.parametrize(("base", "title"), [(MQTT, "Custom MQTT"), (INFLUX, "InfluxDB")])
def test_reset_restores_the_defaults(service: RunningService, base: str, title: str) -> None:
    body = MQTT_BODY if base == MQTT else INFLUX_BODY
    service.request("PUT", f"{base}/config", json=body).raise_for_status()
    r = service.request("POST", f"{base}/config/reset")
    assert r.json() == {"success": True, "message": f"{title} configuration reset successfully"}
    defaults = MQTT_DEFAULTS if base == MQTT else INFLUX_DEFAULTS
    assert service.get(f"{base}/config").json() == defaults
    assert not any(s in (service.data_dir / "config.json").read_text() for s in SECRETS)


def _missing(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# (method, base, body, the field the 400 must name); one service for all: none changes anything.
INVALID = [
    ("PUT", MQTT, _missing(MQTT_BODY, "useCredentials"), "useCredentials"),
    ("PUT", INFLUX, _missing(INFLUX_BODY, "token"), "token"),
    ("PUT", MQTT, {**MQTT_BODY, "port": "1883"}, "port"),
    ("PUT", MQTT, {**MQTT_BODY, "port": 1883.0}, "port"),
    ("PATCH", MQTT, {"port": 0}, "port"),
    ("PATCH", MQTT, {"port": 65536}, "port"),
    ("PATCH", MQTT, {"enabled": 1}, "enabled"),
    ("PATCH", MQTT, {"frequency": -1}, "frequency"),
    ("PATCH", MQTT, {"frequency": 86_401}, "frequency"),
    ("PATCH", MQTT, {"enabled": True}, "server"),  # no default broker
    ("PATCH", MQTT, {"server": "mqtt://broker.lan"}, "server"),
    ("PATCH", MQTT, {"caFile": "ca.pem"}, "caFile"),
    ("PATCH", MQTT, {"keyFile": "/etc/key.pem"}, "keyFile"),
    ("PATCH", MQTT, {"haDiscoveryPrefix": "home/+"}, "haDiscoveryPrefix"),
    ("PATCH", MQTT, {"topic": "home/#"}, "topic"),
    ("PATCH", MQTT, {"clientid": "c" * 64}, "clientid"),
    ("PATCH", MQTT, {"password": "p" * 64}, "password"),
    ("PATCH", MQTT, {"username": None}, "username"),
    ("PATCH", INFLUX, {"version": 3}, "version"),
    ("PATCH", INFLUX, {"frequency": 3601}, "frequency"),
    ("PATCH", INFLUX, {"token": "t" * 128}, "token"),
    ("PATCH", INFLUX, {"measurement": ""}, "measurement"),
    ("PATCH", INFLUX, {"useSsl": "true"}, "useSsl"),
    ("PATCH", INFLUX, {"nonsense": 1}, "body"),
    ("PUT", INFLUX, [INFLUX_BODY], "body"),
]


def test_invalid_bodies_name_the_field_and_change_nothing(service: RunningService) -> None:
    before_file = (service.data_dir / "config.json").read_bytes()
    before = {base: service.get(f"{base}/config").json() for base in (MQTT, INFLUX)}
    for method, base, body, field in INVALID:
        r = service.request(method, f"{base}/config", json=body)
        assert r.status_code == 400, (method, base, body)
        assert r.json()["success"] is False
        error = r.json()["error"]
        assert re.search(rf"(^|: ){re.escape(field)}:", error), (body, error)
        assert "p" * 64 not in error and "t" * 128 not in error  # a rejected secret is not echoed
    assert {base: service.get(f"{base}/config").json() for base in (MQTT, INFLUX)} == before
    assert (service.data_dir / "config.json").read_bytes() == before_file


def test_bad_json_and_oversized_bodies(service: RunningService) -> None:
    headers = {"Content-Type": "application/json"}
    r = service.request("PUT", f"{MQTT}/config", data=b'{"enabled": tru', headers=headers)
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid JSON")
    # Limits per endpoint as on the device: 512 bytes for MQTT, 1024 for InfluxDB.
    big = {**MQTT_BODY, "server": "s" * 255, "topic": "t" * 127, "clientid": "c" * 63}
    assert len(json.dumps(big)) > 512
    r = service.request("PUT", f"{MQTT}/config", json=big)
    assert r.status_code == 413 and r.json()["error"] == "Payload Too Large. Max: 512"
    influx_big = {**INFLUX_BODY, "server": "s" * 255}
    assert 512 < len(json.dumps(influx_big)) <= 1024
    assert service.request("PUT", f"{INFLUX}/config", json=influx_big).status_code == 200
    assert service.get(f"{MQTT}/config").json() == MQTT_DEFAULTS


def test_status_is_honest(service: RunningService) -> None:
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")
    for base in (MQTT, INFLUX):
        status = service.get(f"{base}/status").json()
        assert status["status"] == "Disabled" and iso.match(status["statusTimestamp"])
    first = service.get(f"{MQTT}/status").json()["statusTimestamp"]
    time.sleep(1.0)  # statusTimestamp has whole seconds: let the clock pass one
    # Nothing listens on 127.0.0.1:1: the status says so, and never claims a connection.
    mqtt_on = {"enabled": True, "server": "127.0.0.1", "port": 1}
    service.request("PATCH", f"{MQTT}/config", json=mqtt_on).raise_for_status()
    nobody = {"enabled": True, "server": "127.0.0.1", "port": free_port()}  # never a system influxd
    service.request("PATCH", f"{INFLUX}/config", json=nobody).raise_for_status()
    mqtt = service.get(f"{MQTT}/status").json()
    influx = service.get(f"{INFLUX}/status").json()
    assert mqtt["status"] in ("Configuration updated", "Connection failed: MQTT_CONNECT_FAILED: "
                              "connection refused by 127.0.0.1:1 (no broker listening) (Attempt 1). "
                              "Retrying in 5 s"), mqtt  # fmt: skip
    # The writer runs: it says what it did last, never claiming a send that failed.
    assert influx["status"] == "Configuration updated" or influx["status"].startswith("Failed to send")
    assert influx["statusTimestamp"] > first
    refused = "Failed to send data: HTTP -1 - connection refused (Attempt 1). Retrying in 1 s"
    wait_until(lambda: service.get(f"{INFLUX}/status").json()["status"] == refused, what="refused")
    assert mqtt["statusTimestamp"] > first


def test_settings_survive_a_restart(service: RunningService, monkeypatch: pytest.MonkeyPatch) -> None:
    service.request("PUT", f"{MQTT}/config", json=MQTT_BODY).raise_for_status()
    service.request("PUT", f"{INFLUX}/config", json=INFLUX_BODY).raise_for_status()
    service.stop()
    again = start_service(service.data_dir, monkeypatch)
    try:
        assert again.get(f"{MQTT}/config").json() == masked(full(MQTT_BODY))
        assert again.get(f"{INFLUX}/config").json() == masked(full(INFLUX_BODY))
        assert again.services.config.current.influxdb.token.get_secret_value() == "influx-Token-43"
    finally:
        again.stop()
