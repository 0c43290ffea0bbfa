"""schemathesis against every operation of the live OpenAPI document, with Digest auth.

The read-mostly operations share one service; the destructive ones (restore, delete, reset,
restart, password change, ports) each group runs on a throw-away service of its own, so one
operation's effect (a new password, a restart) does not spoil the others' checks. Generated
addresses are rewritten to 127.0.0.1 before sending: the service must never be made to send
traffic (MQTT, InfluxDB, syslog) anywhere but loopback.

Held: no 5xx (the documented 501 of chip-only endpoints aside) and every response conforms to
the documented schema.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from requests.auth import HTTPDigestAuth
from schemathesis.checks import response_schema_conformance

from tests.loopback import PASSWORD, wait_until
from tests.reliability.report import Row
from tests.reliability.service import Homemeter, write_config

#: Groups of destructive operations, each on a fresh service (in this order, the worst last).
DESTRUCTIVE = (
    ("restore and files", r"/restore/|/files/|/delete-file$"),
    (
        "energy and settings",
        r"/energy(/reset)?$|/modbus/config$|/custom-mqtt/config|/influxdb/config"
        r"|/logs-udp-destination$|/mdns/config$|/metrics/config$",
    ),
    ("password", r"/auth/(change|reset)-password$"),
    ("restart and factory reset", r"/system/(restart|factory-reset)$"),
)
ADDRESS_FIELDS = ("server", "destination", "host", "bind", "url")


@dataclass
class Outcome:
    operations: int = 0
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def loopback_only(body: Any) -> Any:
    """Generated host names and addresses replaced by 127.0.0.1 (nested objects too)."""
    if isinstance(body, dict):
        return {
            k: "127.0.0.1" if k in ADDRESS_FIELDS and isinstance(v, str) else loopback_only(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [loopback_only(v) for v in body]
    return body


@contextmanager
def _service(work: Path) -> Iterator[Homemeter]:
    write_config(work / "data")
    svc = Homemeter(work / "data").start()
    try:
        yield svc
    finally:
        svc.close()


def _exercise(svc: Homemeter, operation: Any, examples: int, outcome: Outcome) -> None:
    documented = set(operation.definition.raw.get("responses", {}))
    state = {"password": PASSWORD}
    rng = random.Random(0)

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        if isinstance(case.body, dict):
            case.body = loopback_only(case.body)
            if "currentPassword" in case.body and rng.random() < 0.5:
                case.body["currentPassword"] = state["password"]
        auth = HTTPDigestAuth("admin", state["password"])
        response = case.call(base_url=svc.url, auth=auth, timeout=15)
        outcome.requests += 1
        label = f"{case.method} {case.path}"
        if response.status_code >= 500 and not (response.status_code == 501 and "501" in documented):
            outcome.server_errors.append(f"{label} -> {response.status_code} {response.text[:120]}")
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except Exception as err:  # schemathesis' failure types differ by version: report any
            outcome.violations.append(f"{label}: {str(err).splitlines()[0][:160]}")
        if response.status_code == 200 and isinstance(case.body, dict) and "newPassword" in case.body:
            state["password"] = case.body["newPassword"]
        if re.search(r"/system/(restart|factory-reset)$", case.path) and response.status_code == 200:
            _await_restart(svc)

    check()
    outcome.operations += 1


def _await_restart(svc: Homemeter) -> None:
    """A restart answers first, then re-executes itself on the same ports: wait for down, then up."""

    def down() -> bool:
        try:
            requests.get(f"{svc.url}/api/v1/health", timeout=1)
        except requests.RequestException:
            return True
        return False

    wait_until(down, timeout=15, what="the service going down for its restart")
    svc.wait_healthy(30)


def run_schemathesis(work: Path, examples: int, groups: tuple[str, ...] | None = None) -> list[Row]:
    """Every operation (or only the destructive `groups`); rows for the table."""
    outcome = Outcome()
    destructive = "|".join(f"(?:{pattern})" for _, pattern in DESTRUCTIVE)
    plan: list[tuple[str, str | None, str | None]] = []
    if groups is None:
        plan.append(("read-mostly", None, destructive))
    plan += [(name, pattern, None) for name, pattern in DESTRUCTIVE if groups is None or name in groups]
    for n, (name, include, exclude) in enumerate(plan):
        with _service(work / f"svc-{n}") as svc:
            schema = schemathesis.openapi.from_dict(svc.get("/openapi.json").json())
            schema = (
                schema.include(path_regex=include) if include else schema.exclude(path_regex=exclude or "^$")
            )
            for result in schema.get_all_operations():
                operation = result.ok()
                few = re.search(r"restart|factory-reset", operation.path) is not None
                _exercise(svc, operation, min(examples, 3) if few else examples, outcome)
            errors = [line for line in svc.log.splitlines() if "level=error" in line]
            outcome.server_errors += [f"{name}: log: {line[:160]}" for line in errors]
    five = len(outcome.server_errors)
    return [
        Row(
            "api",
            f"schemathesis: no 5xx ({outcome.operations} operations)",
            outcome.requests,
            outcome.requests - five,
            "; ".join(outcome.server_errors[:3]) or "0 server errors, 0 error log lines",
            ok=five == 0,
        ),
        Row(
            "api",
            "schemathesis: responses match the schema",
            outcome.requests,
            outcome.requests - len(outcome.violations),
            "; ".join(outcome.violations[:3]) or "0 violations",
        ),
    ]
