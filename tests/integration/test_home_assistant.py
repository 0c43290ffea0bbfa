"""The exact calls the Home Assistant integration (homeassistant-energyme 1.1.0) makes, as it makes them.

It uses requests with a new `HTTPDigestAuth` per call (a fresh handshake each time), reads the fields
below and nothing else (reference rest-api.md section 6). If one of these tests fails, users' Home
Assistant dashboards break.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.integration.conftest import PASSWORD, RunningService, start_service, wait_until

METER_KEYS = (
    "voltage", "current", "activePower", "reactivePower", "apparentPower", "powerFactor",
    "activeEnergyImported", "activeEnergyExported", "reactiveEnergyImported",
    "reactiveEnergyExported", "apparentEnergy",
)  # fmt: skip
ENERGY_KEYS = METER_KEYS[6:]
MAX_CHANNELS_POSSIBLE = 17  # hard-coded in the integration


def ha_get(service: RunningService, path: str, timeout: float = 10, password: str = PASSWORD) -> Any:
    """One coordinator call: fresh auth object, JSON accept header, raise on non-2xx, parse JSON."""
    response = requests.get(
        f"{service.url}/api/v1/{path}",
        auth=HTTPDigestAuth("admin", password),
        headers={"accept": "application/json"},
        timeout=timeout,
    )
    response.raise_for_status()
    return response.json()


def dig(doc: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        doc = doc[key]
    return doc


def normalise_channels(doc: Any) -> dict[str, Any]:
    """The integration's normalisation: a list (device) or {"channels": [...]} (swagger)."""
    items = doc["channels"] if isinstance(doc, dict) else doc
    return {str(item.get("index", pos)): item for pos, item in enumerate(items)}


def test_config_flow_reads_a_stable_device_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = start_service(tmp_path / "data", monkeypatch)
    try:
        info = ha_get(first, "system/info", timeout=5)
        device_id = dig(info, "static.device.id")
        assert re.fullmatch(r"[0-9a-f]{12}", device_id)
        wrong = requests.get(
            f"{first.url}/api/v1/system/info", auth=HTTPDigestAuth("admin", "wrong password"), timeout=5
        )
        assert wrong.status_code == 401  # -> invalid_auth in the config flow, reauth later
    finally:
        first.stop()
    again = start_service(tmp_path / "data", monkeypatch)
    try:
        # Reauth/reconfigure refuse with device_mismatch if the id changed across a restart.
        assert dig(ha_get(again, "system/info", timeout=5), "static.device.id") == device_id
    finally:
        again.stop()


def test_meter_coordinator_polls(service: RunningService) -> None:
    wait_until(lambda: len(ha_get(service, "ade7953/meter-values")) > 1, what="readings of several channels")
    previous: dict[tuple[int, str], float] = {}
    for _ in range(3):
        channels = normalise_channels(ha_get(service, "ade7953/channel"))
        values = ha_get(service, "ade7953/meter-values")
        assert isinstance(values, list)
        active = [
            int(ch["index"])
            for ch in channels.values()
            if ch["active"] is True and int(ch["index"]) < MAX_CHANNELS_POSSIBLE
        ]
        assert active and 0 in active
        for index in active:
            label = channels[str(index)].get("label", f"Channel {index}")
            assert isinstance(label, str) and label
            element = next(v for v in values if v["index"] == index)
            for key in METER_KEYS:
                number = float(element["data"][key])
                assert math.isfinite(number)
            for key in ENERGY_KEYS:  # total_increasing: any decrease is read as a meter reset
                now = float(element["data"][key])
                assert now >= previous.get((index, key), 0.0)
                previous[(index, key)] = now
        time.sleep(0.3)  # the coordinator's poll interval (HA polls every 10 s; 60x simulation)


def test_meter_values_before_any_reading_is_an_empty_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 60 s window: nothing is read during the first refresh, which must still succeed.
    data = tmp_path / "data"
    first = start_service(data, monkeypatch, speed=1.0)
    first.request("PUT", "/api/v1/ade7953/sample-time", json={"sampleTime": 60_000}).raise_for_status()
    first.stop()
    again = start_service(data, monkeypatch, speed=1.0)
    try:
        assert ha_get(again, "ade7953/meter-values") == []
    finally:
        again.stop()


def test_system_coordinator_diagnostic_sensors(service: RunningService) -> None:
    info = ha_get(service, "system/info")
    assert isinstance(dig(info, "static.firmware.buildVersion"), str)
    assert re.fullmatch(r"[0-9a-f]{12}", dig(info, "static.device.id"))
    for path in (
        "dynamic.memory.heap.freePercentage",
        "dynamic.time.uptimeSeconds",
        "dynamic.storage.littlefs.freePercentage",
    ):
        number = float(dig(info, path))
        assert number >= 0, path
    assert 0 <= float(dig(info, "dynamic.memory.heap.freePercentage")) <= 100
    assert 0 <= float(dig(info, "dynamic.storage.littlefs.freePercentage")) <= 100
    # Sensors without a host analogue may be null (unavailable in HA), never a wrong type.
    temperature = dig(info, "dynamic.performance.temperatureCelsius")
    assert temperature is None or isinstance(temperature, int | float)
    network = dig(info, "dynamic.network")
    assert network.get("wifiRssi") is None or isinstance(network["wifiRssi"], int | float)
    assert isinstance(network.get("wifiLocalIp", ""), str)
    update = ha_get(service, "firmware/update-info")
    assert update["isLatest"] is True  # shown as "update available: No"


def test_wrong_password_on_a_coordinator_is_401_not_another_error(service: RunningService) -> None:
    with pytest.raises(requests.HTTPError) as info:
        ha_get(service, "ade7953/meter-values", password="not the password")
    assert info.value.response is not None and info.value.response.status_code == 401
