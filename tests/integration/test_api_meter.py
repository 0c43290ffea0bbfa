"""`/ade7953/*` over real HTTP: channel configuration, sample time, energy; errors that name the field
and change nothing; changes live and persisted."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.integration.conftest import RunningService, wait_until

API = "/api/v1/ade7953"


def channel(service: RunningService, index: int) -> dict[str, Any]:
    response = service.get(f"{API}/channel?index={index}")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def stored_channels(service: RunningService) -> list[dict[str, Any]]:
    doc = json.loads((service.data_dir / "config.json").read_text())
    channels: list[dict[str, Any]] = doc["channels"]
    return channels


def test_channel_list_and_one_channel(service: RunningService) -> None:
    channels = service.get(f"{API}/channel").json()
    assert len(channels) == 17 and [c["index"] for c in channels] == list(range(17))
    assert list(channels[1]) == [
        "index", "active", "reverse", "label", "phase", "ctSpecification", "groupLabel", "role",
    ]  # fmt: skip
    assert channel(service, 3) == channels[3]
    for bad in ("17", "-1", "x"):
        response = service.get(f"{API}/channel?index={bad}")
        assert response.status_code == 400 and "index" in response.json()["error"]


def test_put_replaces_and_is_live_and_persisted(service: RunningService) -> None:
    doc = channel(service, 5) | {"label": "Sauna", "active": True, "role": "load"}
    assert service.request("PUT", f"{API}/channel", json=doc).json()["success"] is True
    assert channel(service, 5)["label"] == "Sauna"
    assert stored_channels(service)[5]["label"] == "Sauna"
    assert service.services.meter.latest.channels[5].label == "Sauna"  # the meter took it live

    def sauna_listed() -> bool:
        values = service.get(f"{API}/meter-values").json()
        return any(v["index"] == 5 and v["label"] == "Sauna" for v in values)

    wait_until(sauna_listed, what="channel 5's first reading under its new label")


def test_put_needs_every_field(service: RunningService) -> None:
    doc = channel(service, 4)
    del doc["groupLabel"]
    response = service.request("PUT", f"{API}/channel", json=doc)
    assert response.status_code == 400 and "groupLabel" in response.json()["error"]
    nested = channel(service, 4)
    del nested["ctSpecification"]["voltageOutput"]
    response = service.request("PUT", f"{API}/channel", json=nested)
    assert response.status_code == 400 and "voltageOutput" in response.json()["error"]


def test_patch_changes_only_the_given_fields(service: RunningService) -> None:
    before = channel(service, 6)
    patch = {"index": 6, "ctSpecification": {"currentRating": 50}}
    assert service.request("PATCH", f"{API}/channel", json=patch).status_code == 200
    after = channel(service, 6)
    assert after["ctSpecification"]["currentRating"] == 50.0
    assert after["ctSpecification"]["voltageOutput"] == before["ctSpecification"]["voltageOutput"]
    assert {k: v for k, v in after.items() if k != "ctSpecification"} == {
        k: v for k, v in before.items() if k != "ctSpecification"
    }


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"index": 2, "label": ""}, "label"),
        ({"index": 2, "phase": 5}, "phase"),
        ({"index": 0, "phase": 4}, "phase"),
        ({"index": 2, "role": "heater"}, "role"),
        ({"index": 2, "active": 1}, "active"),
        ({"index": 2, "ctSpecification": {"currentRating": 10001}}, "currentRating"),
        ({"index": 2, "ctSpecification": {"scalingFraction": "0.1"}}, "scalingFraction"),
        ({"index": 17, "label": "x"}, "index"),
        ({"label": "x"}, "index"),
    ],
)
def test_invalid_values_are_400_naming_the_field_and_change_nothing(
    service: RunningService, patch: dict[str, Any], field: str
) -> None:
    before = service.get(f"{API}/channel").json()
    response = service.request("PATCH", f"{API}/channel", json=patch)
    assert response.status_code == 400
    assert response.json()["success"] is False and field in response.json()["error"]
    assert service.get(f"{API}/channel").json() == before


def test_group_members_must_share_a_role(service: RunningService) -> None:
    group = channel(service, 1)["groupLabel"]
    response = service.request(
        "PATCH", f"{API}/channel", json={"index": 7, "groupLabel": group, "role": "load"}
    )
    if channel(service, 1)["role"] != "load":
        assert response.status_code == 400 and "groupLabel" in response.json()["error"]


def test_put_channels_is_all_or_nothing(service: RunningService) -> None:
    before = service.get(f"{API}/channel").json()
    good = before[8] | {"label": "Garage"}
    bad = before[9] | {"phase": 9}
    response = service.request("PUT", f"{API}/channels", json=[good, bad])
    assert response.status_code == 400 and "phase" in response.json()["error"]
    assert service.get(f"{API}/channel").json() == before, "the valid element was not applied alone"
    assert service.request("PUT", f"{API}/channels", json=[good]).status_code == 200
    assert channel(service, 8)["label"] == "Garage"


def test_channel_reset_restores_the_first_start_table(service: RunningService) -> None:
    # One definition of the factory table: reset gives back what the first start had.
    first = channel(service, 10)
    service.request("PATCH", f"{API}/channel", json={"index": 10, "label": "Changed", "role": "pv"})
    assert channel(service, 10)["label"] == "Changed"
    assert service.request("POST", f"{API}/channel/reset?index=10").status_code == 200
    assert channel(service, 10) == first
    assert service.request("POST", f"{API}/channel/reset").status_code == 400


def test_bad_json_wrong_method_unknown_path_and_size_limit(service: RunningService) -> None:
    response = service.request(
        "PUT", f"{API}/channel", data=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["success"] is False
    response = service.request("POST", f"{API}/channel", json={})
    assert response.status_code == 405 and "PUT" in response.json()["error"]
    response = service.get("/api/v1/no/such/thing")
    assert response.status_code == 404 and response.json()["success"] is False
    huge = {"index": 1, "label": "x" * 600}
    response = service.request("PATCH", f"{API}/channel", json=huge)
    assert response.status_code == 413 and "512" in response.json()["error"]


def test_sample_time_applies_live(service: RunningService) -> None:
    assert service.get(f"{API}/sample-time").json() == {"sampleTime": 200}
    for bad in ({"sampleTime": 199}, {"sampleTime": 250.5}, {"sampleTime": "300"}, {}):
        response = service.request("PUT", f"{API}/sample-time", json=bad)
        assert response.status_code == 400 and "sampleTime" in response.json()["error"]
    assert service.request("PUT", f"{API}/sample-time", json={"sampleTime": 400}).ok
    assert service.get(f"{API}/sample-time").json() == {"sampleTime": 400}
    assert service.runtime.meter.sample_time_ms == 400


def test_energy_set_and_reset_are_saved(service: RunningService) -> None:
    body = {
        "channel": 0, "activeEnergyImported": 123456.0, "activeEnergyExported": 10.0,
        "reactiveEnergyImported": 1.0, "reactiveEnergyExported": 2.0, "apparentEnergy": 123500.0,
    }  # fmt: skip
    assert service.request("PUT", f"{API}/energy", json=body).ok
    values = service.get(f"{API}/meter-values?index=0").json()
    assert values["activeEnergyImported"] >= 123456.0
    response = service.request("PUT", f"{API}/energy", json=body | {"activeEnergyImported": -1})
    assert response.status_code == 400 and "activeEnergyImported" in response.json()["error"]
    assert service.request("POST", f"{API}/energy/reset?index=0").ok
    assert service.get(f"{API}/meter-values?index=0").json()["activeEnergyImported"] < 1000


def test_grid_frequency_and_one_channel_values(service: RunningService) -> None:
    assert 45 <= service.get(f"{API}/grid-frequency").json()["gridFrequency"] <= 65
    values = service.get(f"{API}/meter-values?index=0").json()
    assert list(values)[:3] == ["voltage", "current", "activePower"] and len(values) == 11


def test_requests_without_credentials_change_nothing(service: RunningService) -> None:
    before = channel(service, 2)
    response = requests.patch(
        f"{service.url}{API}/channel", json={"index": 2, "label": "Intruder"}, timeout=5
    )
    assert response.status_code == 401
    assert channel(service, 2) == before


def test_head_works_where_get_does(service: RunningService) -> None:
    response = service.request("HEAD", f"{API}/channel?index=1")
    assert response.status_code == 200 and response.content == b""
