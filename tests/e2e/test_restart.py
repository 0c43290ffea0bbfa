"""`POST /system/restart` through the real CLI: the same process re-executes and serves again."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth

from tests.e2e.conftest import PASSWORD, Service

API = "/api/v1"


def test_restart_reexecs_the_same_command_and_keeps_energy(
    service_factory: type[Service], tmp_path: Path
) -> None:
    svc = service_factory(tmp_path / "data").start()
    assert svc.proc is not None
    auth = HTTPDigestAuth("admin", PASSWORD)
    energy = {"channel": 2, "activeEnergyImported": 4242.0, "activeEnergyExported": 0,
              "reactiveEnergyImported": 0, "reactiveEnergyExported": 0, "apparentEnergy": 0}  # fmt: skip
    requests.put(f"{svc.url}{API}/ade7953/energy", json=energy, auth=auth, timeout=5).raise_for_status()
    before = svc.get(f"{API}/system/info").json()["static"]

    response = requests.post(f"{svc.url}{API}/system/restart", auth=auth, timeout=5)
    assert response.json() == {"success": True, "message": "System restart initiated"}

    # The new run counts one more start; the process (same pid) never exits in between.
    deadline = time.monotonic() + 60  # a re-exec starts Python again: slow on a busy machine
    restarted = False
    while time.monotonic() < deadline and not restarted:
        assert svc.proc.poll() is None, svc.proc.communicate()
        try:
            monitoring = svc.get(f"{API}/system/info").json()["static"]["monitoring"]
            restarted = monitoring["resetCount"] == before["monitoring"]["resetCount"] + 1
        except requests.ConnectionError:
            time.sleep(0.1)  # between the stop and the new listener
    assert restarted, "the service did not come back"
    info = svc.get(f"{API}/system/info").json()
    assert info["static"]["device"]["id"] == before["device"]["id"]
    assert info["static"]["monitoring"]["lastResetReasonString"] == "Software"  # a clean stop
    values = svc.get(f"{API}/ade7953/meter-values?index=2").json()
    assert values["activeEnergyImported"] >= 4242.0  # saved by the clean stop, read at start
    code, out, _ = svc.stop()
    assert code == 0
    assert "restarting (restart)" in out
