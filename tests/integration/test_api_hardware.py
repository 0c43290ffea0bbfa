"""Chip- and ESP32-only endpoints over real HTTP: honest constant answers, 501 where Linux has no
analogue (and nothing changes), stored LED brightness and ADE7953 calibration that persist."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from homemeter import __version__
from homemeter.config.hardware import Ade7953Calibration
from tests.integration.conftest import RunningService

API = "/api/v1"


def stored(service: RunningService) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((service.data_dir / "config.json").read_text())
    return doc


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/ota/upload", None),
        ("POST", "/network/wifi/reset", None),
        ("POST", "/network/wifi/credentials", {"ssid": "home", "password": "secret123"}),
        ("PUT", "/network/config", {"useStaticIp": True, "ip": "10.0.0.5"}),
        ("PATCH", "/network/config", {"useStaticIp": True}),
        ("POST", "/network/config/reset", None),
    ],
)
def test_no_linux_analogue_is_501_and_changes_nothing(
    service: RunningService, method: str, path: str, body: Any
) -> None:
    before = service.get(f"{API}/network/config").json()
    response = service.request(method, f"{API}{path}", json=body)
    assert response.status_code == 501
    doc = response.json()
    assert doc["success"] is False and doc["error"]
    assert service.get(f"{API}/network/config").json() == before


def test_network_config_is_dhcp_managed_by_the_os(service: RunningService) -> None:
    assert service.get(f"{API}/network/config").json() == {
        "useStaticIp": False, "ip": "", "gateway": "", "subnet": "", "dns1": "", "dns2": "",
        "fallbackToDhcp": True,
    }  # fmt: skip


def test_ota_is_idle_and_cannot_roll_back(service: RunningService) -> None:
    status = service.get(f"{API}/ota/status").json()
    assert status["status"] == "idle" and status["canRollback"] is False
    assert status["currentVersion"] == __version__
    assert re.fullmatch(r"[0-9a-f]{32}", status["currentMD5"])
    # One build identity: the OTA page and system/info name the same MD5.
    assert status["currentMD5"] == service.get(f"{API}/system/info").json()["static"]["firmware"]["sketchMD5"]
    assert (status["progress"], status["progressPercent"], status["hasError"]) == (0, 0.0, False)
    response = service.request("POST", f"{API}/ota/rollback")
    assert response.status_code == 400 and response.json()["error"] == "Rollback not possible"


def test_constant_states_safe_mode_secrets_cloud(service: RunningService) -> None:
    assert service.get(f"{API}/system/safe-mode").json() == {
        "active": False, "canRestartNow": True, "minimumUptimeRemainingMs": 0,
    }  # fmt: skip
    cleared = service.request("POST", f"{API}/system/safe-mode/clear")
    assert cleared.json() == {"success": True, "message": "Device is not in safe mode"}
    assert service.get(f"{API}/system/secrets").json() == {"hasSecrets": False}
    assert service.get(f"{API}/mqtt/cloud-services").json() == {"enabled": False}
    refused = service.request("PUT", f"{API}/mqtt/cloud-services", json={"enabled": True})
    assert refused.status_code == 403
    assert refused.json()["error"] == "Cloud services are not available in community mode"
    assert service.get(f"{API}/mqtt/cloud-services").json() == {"enabled": False}


def test_crash_monitor_reports_this_start_and_no_core_dump(service: RunningService) -> None:
    info = service.get(f"{API}/crash/info").json()
    # A fresh data directory: the first start ever counts as a power-on.
    assert info == {
        "resetReason": "Power on", "resetReasonCode": 1, "crashCount": 0,
        "consecutiveCrashCount": 0, "resetCount": 1, "consecutiveResetCount": 0,
        "hasCoreDump": False,
    }  # fmt: skip
    dump = service.get(f"{API}/crash/dump")
    assert dump.status_code == 404 and dump.json()["error"] == "No core dump available"
    clear = service.request("POST", f"{API}/crash/clear")
    assert clear.status_code == 404 and clear.json()["error"] == "No core dump available to clear"


def test_cpu_samples_from_the_host(service: RunningService) -> None:
    for _ in range(3):  # three samples now, rather than waiting for the 1 s sampler
        service.services.cpu.sample()
    doc = service.get(f"{API}/system/cpu/samples").json()
    assert doc["intervalSeconds"] == 1 and doc["samplesReturned"] >= 3
    assert len(doc["core0"]) == doc["samplesReturned"]
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in doc["core0"] + doc["core1"])
    assert doc["fromEpoch"] <= doc["toEpoch"]
    only0 = service.get(f"{API}/system/cpu/samples?core=0&lastSeconds=5000").json()
    assert "core0" in only0 and "core1" not in only0
    for query, message in [
        ("lastSeconds=0", "lastSeconds must be a positive integer"),
        ("lastSeconds=abc", "lastSeconds must be a positive integer"),
        ("core=2", "core must be 0, 1, or both"),
    ]:
        response = service.get(f"{API}/system/cpu/samples?{query}")
        assert (response.status_code, response.json()["error"]) == (400, message)


def test_led_brightness_is_stored_and_validated(service: RunningService) -> None:
    assert service.get(f"{API}/led/brightness").json() == {"brightness": 75, "max_brightness": 100}
    ok = service.request("PUT", f"{API}/led/brightness", json={"brightness": 40})
    assert ok.json() == {"success": True, "message": "LED brightness updated successfully"}
    assert service.get(f"{API}/led/brightness").json()["brightness"] == 40
    assert stored(service)["led"] == {"brightness": 40}
    for bad, fragment in [
        ({"brightness": 101}, "out of range"),
        ({"brightness": 256}, "invalid brightness"),
        ({"brightness": "50"}, "invalid brightness"),
        ({"brightness": True}, "invalid brightness"),
        ({"brightness": 50.5}, "invalid brightness"),
        ({}, "invalid brightness"),
    ]:
        response = service.request("PUT", f"{API}/led/brightness", json=bad)
        assert response.status_code == 400 and fragment in response.json()["error"], bad
    assert service.get(f"{API}/led/brightness").json()["brightness"] == 40


def test_ade7953_config_put_patch_reset(service: RunningService) -> None:
    defaults = service.get(f"{API}/ade7953/config").json()
    assert defaults == Ade7953Calibration().model_dump() and len(defaults) == 19
    assert defaults["aVGain"] == 4050000 and defaults["aWGain"] == 4194304

    full = {key: i * 1000 - 5000 for i, key in enumerate(defaults)}
    ok = service.request("PUT", f"{API}/ade7953/config", json=full)
    assert ok.json() == {"success": True, "message": "ADE7953 configuration updated successfully"}
    assert service.get(f"{API}/ade7953/config").json() == full
    assert stored(service)["ade7953"] == full

    patched = service.request("PATCH", f"{API}/ade7953/config", json={"phCalB": -7, "unknown": 1})
    assert patched.status_code == 200
    assert service.get(f"{API}/ade7953/config").json() == full | {"phCalB": -7}

    reset = service.request("POST", f"{API}/ade7953/config/reset")
    assert reset.json()["message"] == "ADE7953 configuration reset successfully"
    assert service.get(f"{API}/ade7953/config").json() == defaults


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [
        ("PUT", "missing aVGain", "aVGain"),
        ("PUT", {"aIGain": 2**31}, "aIGain"),
        ("PUT", {"bIGain": 1.5}, "bIGain"),
        ("PATCH", {"aWGain": "4194304"}, "aWGain"),
        ("PATCH", {"phCalA": -(2**31) - 1}, "phCalA"),
        ("PATCH", {"nothing": 1}, "at least one"),
    ],
)
def test_ade7953_config_rejects_bad_values_and_changes_nothing(
    service: RunningService, method: str, body: Any, field: str
) -> None:
    before = service.get(f"{API}/ade7953/config").json()
    if method == "PUT":
        body = {k: v for k, v in before.items() if k != "aVGain"} if isinstance(body, str) else before | body
    response = service.request(method, f"{API}/ade7953/config", json=body)
    assert response.status_code == 400 and field in response.json()["error"]
    assert service.get(f"{API}/ade7953/config").json() == before
    assert stored(service)["ade7953"] == before
