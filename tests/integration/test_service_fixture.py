"""The in-process service fixture itself: real HTTP, Digest auth, meter data flowing."""

from __future__ import annotations

import requests

from tests.integration.conftest import RunningService, wait_until


def test_health_is_open_and_meter_values_need_digest(service: RunningService) -> None:
    assert requests.get(f"{service.url}/api/v1/health", timeout=5).json()["status"] == "ok"
    assert requests.get(f"{service.url}/api/v1/ade7953/meter-values", timeout=5).status_code == 401
    values = wait_until(lambda: service.get("/api/v1/ade7953/meter-values").json(), what="readings")
    assert values[0]["index"] == 0
    assert service.services.meter.latest.channels[0].role.value == values[0]["role"]
