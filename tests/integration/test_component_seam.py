"""The component seam: a new consumer is one module and one line in the component list.

The probe starts with the service, receives snapshots, takes a configuration change live, refuses one
(409, the old configuration kept everywhere: file, meter, API), reports its status and an issue code
of its own through the generic endpoints, and stops before the energy persister.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from homemeter.app import COMPONENTS
from tests.integration.conftest import start_service, wait_until
from tests.integration.probe_component import Probe

SAMPLE_TIME = "/api/v1/ade7953/sample-time"


def test_a_new_component_plugs_in_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Probe.stopped_while_persister.clear()
    service = start_service(tmp_path / "data", monkeypatch, components=(*COMPONENTS, Probe))
    try:
        status = wait_until(
            lambda: (
                (s := service.get("/api/v1/system/components").json()["probe"])["counters"].get(
                    "snapshots", 0
                )
                >= 3
                and s
            ),
            what="the probe to receive snapshots",
        )
        assert status["state"] == "running" and status["details"] == {"sampleTime": 200}
        names = list(service.get("/api/v1/system/components").json())
        assert names == [*(c.name for c in COMPONENTS), "probe"] and names[0] == "energy"
        issues = service.get("/api/v1/system/issues").json()["issues"]
        assert [i["severity"] for i in issues if i["code"] == "probe_saw_snapshots"] == ["info"]

        assert service.request("PUT", SAMPLE_TIME, json={"sampleTime": 400}).status_code == 200
        assert service.get("/api/v1/system/components").json()["probe"]["details"]["sampleTime"] == 400

        refused = service.request("PUT", SAMPLE_TIME, json={"sampleTime": 6000})
        assert refused.status_code == 409
        assert "probe cannot follow" in refused.json()["error"]
        assert service.get(SAMPLE_TIME).json() == {"sampleTime": 400}
        assert json.loads((service.data_dir / "config.json").read_text())["sampleTime"] == 400
        assert service.runtime.meter.sample_time_ms == 400  # the meter's change was rolled back
        assert service.get("/api/v1/system/components").json()["probe"]["details"]["sampleTime"] == 400
    finally:
        service.stop()
    assert Probe.stopped_while_persister == ["running"]  # the persister stops after it, last
    assert service.runtime.components.statuses()["energy"].state.value == "stopped"
