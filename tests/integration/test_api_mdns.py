"""`/api/v1/mdns/*` in the test service, which runs with `--no-mdns`: settings are validated, stored
and reported, and nothing is ever announced (the namespace tests in tests/e2e/test_mdns.py announce).
"""

from __future__ import annotations

import json

from tests.integration.conftest import RunningService

CONFIG = "/api/v1/mdns/config"
STATUS = "/api/v1/mdns/status"
DEFAULT = {"enabled": True, "hostname": "homemeter.local", "vendor": "EnergyMe"}


def test_status_says_off_by_no_mdns_and_nothing_is_advertised(service: RunningService) -> None:
    status = service.get(STATUS).json()
    assert status["state"] == "disabled" and status["disabledBy"] == "--no-mdns"
    assert (status["hostname"], status["addresses"], status["services"]) == (None, [], [])
    assert service.get("/api/v1/system/info").json()["dynamic"]["network"]["mdnsHostname"] is None


def test_settings_change_live_and_are_stored_but_no_mdns_still_wins(service: RunningService) -> None:
    assert service.get(CONFIG).json() == DEFAULT
    r = service.request("PATCH", CONFIG, json={"hostname": "Kitchen-Meter", "vendor": "homemeter"})
    assert r.status_code == 200 and r.json()["success"] is True
    expected = {**DEFAULT, "hostname": "Kitchen-Meter.local", "vendor": "homemeter"}
    assert service.get(CONFIG).json() == expected
    assert json.loads((service.data_dir / "config.json").read_bytes())["mdns"] == expected
    r = service.request("PUT", CONFIG, json={**DEFAULT, "enabled": False})
    assert r.status_code == 200 and service.get(CONFIG).json()["enabled"] is False
    service.request("PATCH", CONFIG, json={"enabled": True})
    assert service.get(STATUS).json()["disabledBy"] == "--no-mdns"  # the command line still wins
    assert service.runtime.components.get("mdns").hostname is None  # type: ignore[union-attr]


def test_bad_settings_are_refused_naming_the_field_and_change_nothing(service: RunningService) -> None:
    cases = [
        ("PATCH", {"hostname": "my_meter"}, "hostname"),
        ("PATCH", {"hostname": "a.b.local"}, "hostname"),
        ("PATCH", {"enabled": "yes"}, "enabled"),
        ("PATCH", {"port": 80}, "port"),
        ("PATCH", {}, "body"),
        ("PUT", {"enabled": True}, "hostname"),
    ]
    for method, body, field in cases:
        r = service.request(method, CONFIG, json=body)
        assert r.status_code == 400 and field in r.json()["error"], (body, r.text)
    assert service.get(CONFIG).json() == DEFAULT
