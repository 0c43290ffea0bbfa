"""The OpenAPI document is valid, Swagger UI works offline, and the live service keeps its schema.

schemathesis generates requests from the document against the running service (real HTTP, Digest)
and checks two things the issue asks for: no 5xx, and every response conforms to the documented
schema. Actions that would stop or wipe the service under test are left out (they have own tests).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from requests.auth import HTTPDigestAuth
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.integration.conftest import PASSWORD, RunningService

# Would restart, wipe or lock the service under test mid-run, or make it connect to a generated
# server name (off the loopback); each has its own tests.
DISRUPTIVE = (
    r"/system/(restart|factory-reset)$|/restore/|/auth/(change|reset)-password$"
    r"|/files/|/delete-file$|/energy(/reset)?$|/modbus/config$"
    r"|/custom-mqtt/config$"  # generated host names would be looked up in DNS: tests stay local
    # generated addresses would receive syslog datagrams / InfluxDB writes: covered with addresses
    # rewritten to 127.0.0.1 in tests/fuzz/api.py
    r"|/logs-udp-destination$|/influxdb/config$"
)


def test_document_is_valid_openapi(service: RunningService) -> None:
    doc = service.get("/openapi.json").json()
    validate(doc)
    paths = doc["paths"]
    assert "/api/v1/ade7953/meter-values" in paths and "/api/v1/health" in paths
    assert paths["/api/v1/health"]["get"]["security"] == []  # the only open endpoint
    body = paths["/api/v1/ade7953/channel"]["put"]["requestBody"]
    assert body["content"]["application/json"]["schema"]  # generated from the pydantic model


@pytest.mark.parametrize("page", ["/docs", "/swagger-ui"])
def test_swagger_ui_is_served_offline(service: RunningService, page: str) -> None:
    assert requests.get(f"{service.url}{page}", timeout=5).status_code == 401  # behind Digest
    html = service.get(page).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{asset} would need the internet"
        assert service.get(asset).status_code == 200, asset
    assert "SwaggerUIBundle" in service.get(next(a for a in assets if a.endswith(".js"))).text


def test_live_service_conforms_to_its_schema(service: RunningService) -> None:
    doc = service.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc).exclude(path_regex=DISRUPTIVE)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        conforms(operation, set(operation.definition.raw.get("responses", {})), service)
        checked += 1
    assert checked >= 10


def conforms(operation: Any, documented: set[str], service: RunningService) -> None:
    """Up to 8 generated requests against one operation: no 5xx, responses match the schema.

    8 keeps `make test` under its 10 minutes; `make fuzz` runs every operation far longer.
    """
    auth = HTTPDigestAuth("admin", PASSWORD)

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        response = case.call(base_url=service.url, session=service.session, auth=auth, timeout=10)
        if response.status_code == 501 and "501" in documented:
            pass  # the honest answer of a chip-only endpoint, as documented
        else:
            case.validate_response(response, checks=[not_a_server_error])
        case.validate_response(response, checks=[response_schema_conformance])

    check()
