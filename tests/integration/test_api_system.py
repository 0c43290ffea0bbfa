"""System and Authentication endpoints over real HTTP with Digest auth (reference 3.1, 3.2, 4.9-4.11).

Restart and factory reset stop the service under test: the fixture's `serve()` returns instead of
re-executing pytest, and the tests read what the stop left on disk or start the service again.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import time
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from homemeter import __version__
from homemeter.store.credentials import CREDENTIALS_FILE
from homemeter.store.energy_store import EnergyStore
from homemeter.store.files import FILES_DIR
from homemeter.system import host
from tests.integration.conftest import PASSWORD, RunningService, start_service

API = "/api/v1"


def wait_stopped(service: RunningService) -> None:
    service.thread.join(timeout=15)
    assert not service.thread.is_alive(), "the service did not stop"


def stored_totals(data_dir: Path) -> dict[int, float]:
    store = EnergyStore(data_dir)
    try:
        return {ch: t.as_tuple()[0] for ch, t in store.open().items()}
    finally:
        store.close()


def test_system_info_reports_this_host_and_service(service: RunningService) -> None:
    info = service.get(f"{API}/system/info").json()
    static, dynamic = info["static"], info["dynamic"]
    assert static["device"]["id"] == service.services.device_id
    assert static["firmware"]["buildVersion"] == __version__
    assert static["hardware"]["chipCores"] == os.cpu_count()
    disk = shutil.disk_usage(service.data_dir)
    assert dynamic["storage"]["littlefs"]["totalBytes"] == disk.total
    heap = dynamic["memory"]["heap"]
    assert heap["freePercentage"] + heap["usedPercentage"] == pytest.approx(100, abs=0.02)
    assert dynamic["performance"]["temperatureCelsius"] == host.cpu_temperature()
    assert dynamic["network"]["wifiLocalIp"] == host.primary_network().ip
    assert dynamic["time"]["uptimeSeconds"] == dynamic["time"]["uptimeMilliseconds"] // 1000
    assert set(dynamic["cpu"]) == {"core0", "core1"}
    update = service.get(f"{API}/firmware/update-info").json()
    assert update == {"currentVersion": __version__, "buildDate": static["firmware"]["buildDate"],
                      "isLatest": True}  # fmt: skip


def test_statistics_count_real_events(service: RunningService) -> None:
    auth = HTTPDigestAuth("admin", PASSWORD)  # one object: the second call reuses the nonce
    before = service.get(f"{API}/system/statistics", auth=auth).json()
    with socket.create_connection(("127.0.0.1", service.modbus_port), timeout=5) as modbus:
        for tid, start in ((1, 1000), (2, 50)):  # a channel block, then a gap (exception 02)
            modbus.sendall(struct.pack(">HHHBBHH", tid, 0, 6, 1, 3, start, 2))
            assert struct.unpack(">H", modbus.recv(256)[:2]) == (tid,)
    assert requests.get(f"{service.url}{API}/system/info", timeout=5).status_code == 401
    requests.get(f"{service.url}{API}/health", timeout=5)  # not counted, as on the device
    after = service.get(f"{API}/system/statistics", auth=auth).json()
    # The anonymous 401 is an error, the first statistics call a success (its own count comes
    # after its body was built); health is not counted.
    assert after["webServer"]["requestsError"] == before["webServer"]["requestsError"] + 1
    assert after["webServer"]["requests"] == before["webServer"]["requests"] + 1
    assert after["modbus"] == {
        "requests": before["modbus"]["requests"] + 1, "requestsError": before["modbus"]["requestsError"] + 1,
    }  # fmt: skip
    meter = service.services.meter
    assert 0 < after["ade7953"]["readingCount"] <= meter.readings
    assert after["ade7953"]["readingCountFailure"] == meter.failures
    assert all(isinstance(v, int) for group in after.values() for v in group.values())


def test_restart_answers_then_stops_cleanly_with_energy_saved(service: RunningService) -> None:
    body = {"channel": 0, "activeEnergyImported": 123_456.0, "activeEnergyExported": 0,
            "reactiveEnergyImported": 0, "reactiveEnergyExported": 0, "apparentEnergy": 0}  # fmt: skip
    service.request("PUT", f"{API}/ade7953/energy", json=body).raise_for_status()
    response = service.request("POST", f"{API}/system/restart")
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "System restart initiated"}
    wait_stopped(service)
    assert service.services.restart.reason == "restart"  # app.run() would re-exec now
    assert stored_totals(service.data_dir)[0] >= 123_456.0


def test_second_restart_while_one_is_pending_is_423(service: RunningService) -> None:
    assert service.services.restart.request("backup restore")  # another endpoint got there first
    response = service.request("POST", f"{API}/system/restart")
    assert response.status_code == 423
    assert "restart" in response.json()["error"]
    assert service.thread.is_alive()


def test_factory_reset_needs_confirmation(service: RunningService) -> None:
    patch = {"index": 1, "label": "Oven"}
    service.request("PATCH", f"{API}/ade7953/channel", json=patch).raise_for_status()
    response = service.request("POST", f"{API}/system/factory-reset")
    assert response.status_code == 400
    assert "?confirm=true" in response.json()["error"]
    response = service.request("POST", f"{API}/system/factory-reset?confirm=yes")
    assert response.status_code == 400
    assert service.get(f"{API}/ade7953/channel?index=1").json()["label"] == "Oven"
    assert service.thread.is_alive() and not service.services.restart.pending


def test_factory_reset_wipes_config_and_energy_but_keeps_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    service = start_service(data, monkeypatch)
    new_password = "kept across the reset"
    change = {"currentPassword": PASSWORD, "newPassword": new_password}
    service.request("POST", f"{API}/auth/change-password", json=change).raise_for_status()
    auth = HTTPDigestAuth("admin", new_password)
    energy = {"channel": 0, "activeEnergyImported": 1e6, "activeEnergyExported": 0,
              "reactiveEnergyImported": 0, "reactiveEnergyExported": 0, "apparentEnergy": 0}  # fmt: skip
    service.request("PUT", f"{API}/ade7953/energy", json=energy, auth=auth).raise_for_status()
    patch = {"index": 1, "label": "Oven"}
    service.request("PATCH", f"{API}/ade7953/channel", json=patch, auth=auth).raise_for_status()
    service.request("PUT", f"{API}/ade7953/sample-time", json={"sampleTime": 1000}, auth=auth)
    (data / FILES_DIR / "note.txt").write_text("gone after the reset")
    device_id = service.services.device_id
    try:
        response = service.request("POST", f"{API}/system/factory-reset?confirm=true", auth=auth)
        assert response.json() == {"success": True, "message": "Factory reset initiated"}
        wait_stopped(service)
    finally:
        service.stop()
    assert service.services.restart.reason == "factory-reset"
    assert stored_totals(data)[0] < 1000  # only what was measured between reset and stop
    assert not any((data / FILES_DIR).iterdir())
    again = start_service(data, monkeypatch)
    try:
        assert again.get(f"{API}/health").ok
        assert again.get(f"{API}/system/info").status_code == 401  # the old password is gone
        assert again.get(f"{API}/ade7953/channel?index=1", auth=auth).json()["label"] != "Oven"
        assert again.get(f"{API}/ade7953/sample-time", auth=auth).json() == {"sampleTime": 200}
        info = again.get(f"{API}/system/info", auth=auth).json()
        assert info["static"]["device"]["id"] == device_id
    finally:
        again.stop()


def test_time_is_the_hosts_and_cannot_be_set(service: RunningService) -> None:
    doc = service.get(f"{API}/system/time").json()
    assert doc["synced"] is host.clock_synced()
    assert abs(doc["unixTime"] - time.time()) < 5
    assert doc["isoTime"].endswith("Z")
    usage = 'Invalid JSON. Required: {"unixTime": <unix_seconds>}'
    for bad in (b"not json", b'{"unixTime": "1732620000"}', b'{"unixTime": 1.5e9}', b"{}"):
        response = service.request("POST", f"{API}/system/time", data=bad)
        assert (response.status_code, response.json()["error"]) == (400, usage), bad
    response = service.request("POST", f"{API}/system/time", json={"unixTime": 5})
    assert response.json()["error"] == "Failed to set time. Value out of valid range."
    response = service.request("POST", f"{API}/system/time", json={"unixTime": 1_800_000_000})
    assert response.status_code == 403
    assert "NTP" in response.json()["error"]
    assert abs(time.time() - 1_800_000_000) > 1e6  # and of course the clock did not move


def test_issues_report_start_recoveries_until_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    first = start_service(data, monkeypatch)
    assert first.get(f"{API}/system/issues").json() == {"issues": []}
    first.stop()
    (data / CREDENTIALS_FILE).chmod(0o644)  # e.g. restored from a backup without its mode
    (data / "energy.db").write_bytes(b"not a database" * 100)
    for leftover in ("energy.db-wal", "energy.db-shm"):
        (data / leftover).unlink(missing_ok=True)
    service = start_service(data, monkeypatch)
    try:
        issues = service.get(f"{API}/system/issues").json()["issues"]
        by_code = {i["code"]: i for i in issues}
        assert set(by_code) == {"energy_db_recovered", "credentials_mode_fixed"}
        fixed = by_code["credentials_mode_fixed"]
        assert fixed["state"] == "cleared_unacked" and fixed["severity"] == "warning"
        assert "644" in fixed["message"] and "channel" not in fixed
        assert (data / CREDENTIALS_FILE).stat().st_mode & 0o777 == 0o600

        ack = service.request("POST", f"{API}/system/issues/ack", json={"code": "credentials_mode_fixed"})
        assert ack.json()["message"] == "Issue acknowledged"
        again = service.request("POST", f"{API}/system/issues/ack", json={"code": "credentials_mode_fixed"})
        assert (again.status_code, again.json()["error"]) == (404, "No such issue instance")
        on_channel = {"code": "energy_db_recovered", "channel": 3}
        assert service.request("POST", f"{API}/system/issues/ack", json=on_channel).status_code == 404
        missing = service.request("POST", f"{API}/system/issues/ack", json={"channel": 1})
        assert missing.json()["error"] == "Missing 'code' (or 'all') parameter"
        wrong_type = service.request("POST", f"{API}/system/issues/ack", json={"code": 7})
        assert wrong_type.status_code == 400 and "code" in wrong_type.json()["error"]
        too_big = service.request("POST", f"{API}/system/issues/ack", json={"code": "x" * 200})
        assert too_big.status_code == 413
        remaining = service.get(f"{API}/system/issues").json()["issues"]
        assert [i["code"] for i in remaining] == ["energy_db_recovered"]

        all_ = service.request("POST", f"{API}/system/issues/ack", json={"all": True})
        assert all_.json()["message"] == "Acknowledged 1 issue(s)"
        assert service.get(f"{API}/system/issues").json() == {"issues": []}
    finally:
        service.stop()


def test_auth_status(service: RunningService) -> None:
    assert service.get(f"{API}/auth/status").json() == {"usingDefaultPassword": False, "username": "admin"}


def test_change_password_applies_to_the_next_request(service: RunningService) -> None:
    url = f"{API}/auth/change-password"
    new = "a brand new secret"
    wrong = service.request("POST", url, json={"currentPassword": "nope nope", "newPassword": new})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "Current password is incorrect")
    assert "www-authenticate" not in wrong.headers  # a wrong field, not a login challenge
    short = service.request("POST", url, json={"currentPassword": PASSWORD, "newPassword": "short"})
    assert short.status_code == 400 and "8 to 64" in short.json()["error"]
    assert "short" not in short.json()["error"]  # never echoed
    missing = service.request("POST", url, json={"newPassword": new})
    assert missing.json()["error"] == "Missing currentPassword or newPassword"
    assert service.request("POST", url, data="x" * 300).status_code == 413
    assert service.get(f"{API}/auth/status").ok  # nothing changed so far

    ok = service.request("POST", url, json={"currentPassword": PASSWORD, "newPassword": new})
    assert ok.json() == {"success": True, "message": "Password changed successfully"}
    assert service.get(f"{API}/auth/status").status_code == 401
    assert service.get(f"{API}/auth/status", auth=HTTPDigestAuth("admin", new)).ok
    stored = (service.data_dir / CREDENTIALS_FILE).read_text()
    assert new not in stored and PASSWORD not in stored  # digest hashes only
    logs = service.get(f"{API}/logs", auth=HTTPDigestAuth("admin", new)).text
    assert new not in logs and PASSWORD not in logs


def test_reset_password_is_refused_honestly(service: RunningService) -> None:
    response = service.request("POST", f"{API}/auth/reset-password")
    assert response.status_code == 501
    assert "homemeter passwd" in response.json()["error"]
    assert service.get(f"{API}/auth/status").ok  # the password still works
