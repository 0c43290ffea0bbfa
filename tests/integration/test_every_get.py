"""Scripts poll every GET endpoint (the device's own benchmark and mock-server tools do exactly this):
none may answer 5xx, and every JSON answer must parse.

The list is the reference catalogue's GET paths (rest-api.md sections 2 and 6.6) plus every GET the
service documents in its OpenAPI document, so an endpoint added later is polled too.
"""

from __future__ import annotations

from tests.integration.conftest import RunningService, wait_until

# rest-api.md 6.6: benchmark_api.py and mock_server.py, with their query strings.
CLIENT_POLLS = (
    "health", "auth/status", "ota/status", "system/info", "system/statistics", "system/secrets",
    "firmware/update-info", "list-files", "crash/info", "crash/dump",
    "crash/dump?offset=0&size=1024", "logs/level", "logs", "custom-mqtt/config",
    "custom-mqtt/status", "mqtt/cloud-services", "influxdb/config", "influxdb/status",
    "led/brightness", "ade7953/config", "ade7953/sample-time", "ade7953/channel",
    "ade7953/channel?index=0", "ade7953/channel?index=1", "ade7953/meter-values",
    "ade7953/meter-values?index=0", "ade7953/grid-frequency", "system/safe-mode", "system/time",
    "system/issues", "logs-udp-destination", "ade7953/waveform/status", "ade7953/waveform/data",
    # The rest of the catalogue's GETs (section 2).
    "system/cpu/samples", "network/config", "ade7953/register",
)  # fmt: skip

# Each must answer 2xx: a client polling it expects data (the others may honestly say 4xx).
MUST_SUCCEED = (
    "health", "auth/status", "system/info", "system/statistics", "firmware/update-info",
    "list-files", "logs/level", "logs", "custom-mqtt/config", "custom-mqtt/status",
    "influxdb/config", "influxdb/status", "ade7953/sample-time", "ade7953/channel",
    "ade7953/meter-values", "ade7953/grid-frequency", "system/time", "system/issues",
)  # fmt: skip


def test_every_get_endpoint_answers_without_a_server_error(service: RunningService) -> None:
    wait_until(lambda: service.get("/api/v1/ade7953/meter-values").json(), what="a first reading")
    documented = [
        path.removeprefix("/api/v1/")
        for path, ops in service.get("/openapi.json").json()["paths"].items()
        if "get" in ops and "{" not in path and path.startswith("/api/v1/")
    ]
    assert len(documented) >= 30
    failures = []
    for path in dict.fromkeys((*CLIENT_POLLS, *documented)):
        response = service.get(f"/api/v1/{path}", headers={"accept": "application/json"})
        if response.status_code >= 500:
            failures.append(f"{path}: {response.status_code} {response.text[:100]}")
            continue
        if response.headers.get("content-type", "").startswith("application/json"):
            response.json()  # must parse
        elif response.status_code not in (204, 304):
            assert response.headers.get("content-type"), path  # logs are text, CSV is text/csv
        if path.split("?")[0] in MUST_SUCCEED and not response.ok:
            failures.append(f"{path}: {response.status_code} {response.text[:100]}")
    assert not failures, failures
