"""The v2 write path (also InfluxDB 3's) against the stand-in that answers as InfluxDB 2 does.

The whole service runs at 60x with one point per channel every 5 simulated seconds; the stand-in
checks token, organisation, bucket, precision and line syntax, and keeps what it accepted, so the
tests see every request: what was sent, in which order, and that no point came twice.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homemeter.component import Component
from homemeter.integrations.influxdb import writer as writer_module
from homemeter.meter.quantities import QUANTITIES
from tests.integration.conftest import RunningService, wait_until
from tests.integration.influx2_standin import Influx2StandIn, Point, running

API = "/api/v1"
FREQUENCY = 5  # simulated seconds: 12 intervals per real second at 60x


@pytest.fixture
def standin() -> Iterator[Influx2StandIn]:
    with running(Influx2StandIn()) as server:
        yield server


def enable(service: RunningService, standin: Influx2StandIn, **changes: Any) -> None:
    body = {"enabled": True, "server": "127.0.0.1", "port": standin.port, "version": 2,
            "organization": standin.org, "bucket": standin.bucket, "token": standin.token,
            "frequency": FREQUENCY, **changes}  # fmt: skip
    service.request("PATCH", f"{API}/influxdb/config", json=body).raise_for_status()


def status(service: RunningService) -> dict[str, Any]:
    doc: dict[str, Any] = service.get(f"{API}/influxdb/status").json()
    return doc


def writer(service: RunningService) -> Component:
    component = service.runtime.components.get("influxdb")
    assert component is not None
    return component


def drain_and_stop(service: RunningService) -> int:
    """Wait for an empty queue, then switch off (a request in flight gets its answer first): nothing
    moves while the test counts. The points queued since (a few at most) are returned."""
    wait_until(lambda: status(service)["backlogPoints"] == 0, 20, what="an empty queue")
    service.request("PATCH", f"{API}/influxdb/config", json={"enabled": False}).raise_for_status()
    left: int = status(service)["backlogPoints"]
    return left


def channel_times(points: list[Point], channel: str = "0") -> list[int]:
    return sorted({p.time for p in points if p.tags["channel"] == channel})


def assert_each_once(points: list[Point]) -> None:
    twice = [key for key, n in Counter(p.key for p in points).items() if n > 2]  # 2 lines per key
    assert not twice, twice[:3]


def assert_all_arrived(service: RunningService, points: list[Point], left: int) -> None:
    """Every line the writer queued was accepted exactly once or is still queued: none lost."""
    counters = writer(service).counters
    assert counters["pointsQueued"] == counters["pointsWritten"] + left
    assert counters["pointsWritten"] == len(points)
    assert_each_once(points)


def meter_time(service: RunningService) -> float:
    return service.runtime.meter.latest.taken_at


def during(points: list[Point], start_s: float, end_s: float) -> list[int]:
    """Channel 0's point times within a span of meter time (one per interval, if nothing was lost)."""
    return [t for t in channel_times(points) if start_s * 1e9 <= t <= end_s * 1e9]


def test_v2_writes_the_devices_lines_with_token_org_bucket_and_precision(
    service: RunningService, standin: Influx2StandIn
) -> None:
    enable(service, standin)
    wait_until(lambda: len(standin.snapshot()[0]) >= 5, 10, what="five writes")
    requests, points = standin.snapshot()
    assert {r.status for r in requests} == {204}
    assert status(service)["status"] == "Data sent successfully"
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for p in points:
        assert p.measurement == "meter"
        assert list(p.tags) == ["channel", "label", "role", "device_id"]  # the device's tag order
        assert p.tags["device_id"] == service.services.device_id
        assert p.time % 1_000_000 == 0
        by_key.setdefault(p.key, {}).update(p.fields)
    # Both lines of a channel share series and time: together they carry every quantity as a float.
    assert all(sorted(fields) == sorted(q.attr for q in QUANTITIES) for fields in by_key.values())
    assert all(isinstance(v, float) for fields in by_key.values() for v in fields.values())
    assert_each_once(points)


def test_wrong_token_keeps_the_points_until_fixed_then_all_arrive_once_in_order(
    service: RunningService, standin: Influx2StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "BATCH_POINTS", 200)  # a backlog of several batches, quickly
    start = meter_time(service)
    enable(service, standin, token="wrong")
    failing = wait_until(lambda: "HTTP 401" in (s := status(service))["status"] and s, 10, what="401")
    assert re.fullmatch(r"Failed to send data: HTTP 401 - unauthorized access \(Attempt \d+\)\. "
                        r"Retrying in \d+ (ms|s)", failing["status"]), failing  # fmt: skip
    wait_until(lambda: status(service)["backlogPoints"] >= 600, 15, what="a backlog")
    assert status(service)["backlogOldestAge"] >= 10 * FREQUENCY  # s of meter time

    fixed = meter_time(service)
    service.request("PATCH", f"{API}/influxdb/config", json={"token": standin.token}).raise_for_status()
    left = drain_and_stop(service)
    requests, points = standin.snapshot()
    assert_all_arrived(service, points, left)
    assert len(during(points, start, fixed)) >= (fixed - start) / FREQUENCY / 2  # the outage's points
    # The oldest first, the backlog in reading order batch after batch, and points read since the
    # fix in between: never two such requests in a row while backlog remains.
    spans = [
        (min(p.time for p in r.points), max(p.time for p in r.points)) for r in requests if r.status == 204
    ]
    assert spans[0][0] == min(p.time for p in points)
    backlog = [span for span in spans if span[1] < fixed * 1e9]
    assert len(backlog) >= 2
    assert all(a[1] < b[0] for a, b in itertools.pairwise(backlog)), backlog
    kinds = "".join("b" if span[1] < fixed * 1e9 else "l" for span in spans)
    assert "ll" not in kinds[: kinds.rindex("b")], kinds


def test_unknown_organisation_and_bucket_are_named(service: RunningService, standin: Influx2StandIn) -> None:
    enable(service, standin, bucket="nope")
    wait_until(lambda: 'HTTP 404 - bucket "nope" not found' in status(service)["status"], 10, what="404")
    enable(service, standin, organization="elsewhere")
    wait_until(lambda: 'organization name "elsewhere" not found' in status(service)["status"], 10, what="org")


def test_retry_after_of_429_and_503_is_honoured(service: RunningService, standin: Influx2StandIn) -> None:
    standin.scripted = [(429, "2"), (503, "1")]
    enable(service, standin)
    wait_until(lambda: len(standin.snapshot()[0]) >= 3, 10, what="three requests")
    requests, points = standin.snapshot()
    assert [r.status for r in requests[:3]] == [429, 503, 204]
    assert requests[1].at - requests[0].at >= 1.95  # Retry-After: 2
    assert requests[2].at - requests[1].at >= 0.95  # Retry-After: 1
    left = drain_and_stop(service)
    _, points = standin.snapshot()
    assert_all_arrived(service, points, left)  # what came meanwhile was kept
    assert writer(service).counters["uploadErrors"] == 2


def test_a_413_halves_the_batch_and_everything_arrives(
    service: RunningService, standin: Influx2StandIn
) -> None:
    standin.max_body = 40_000  # about 200 lines
    enable(service, standin, token="wrong")
    wait_until(lambda: status(service)["backlogPoints"] >= 1500, 20, what="a backlog above the limit")
    service.request("PATCH", f"{API}/influxdb/config", json={"token": standin.token}).raise_for_status()
    left = drain_and_stop(service)
    requests, points = standin.snapshot()
    assert 413 in [r.status for r in requests]
    assert_all_arrived(service, points, left)


@pytest.mark.parametrize("answer", [400, 422])
def test_bad_data_is_dropped_row_by_row_with_the_servers_reason(
    service: RunningService, standin: Influx2StandIn, answer: int
) -> None:
    enable(service, standin, token="wrong")
    wait_until(lambda: status(service)["backlogPoints"] >= 600, 15, what="a backlog")
    # The server refuses channel 3's points read so far (400: the whole request; 422: those lines).
    poisoned = int(service.runtime.meter.latest.taken_at * 1e9)
    standin.poison = lambda p: p.tags["channel"] == "3" and p.time <= poisoned
    standin.poison_status = answer
    service.request("PATCH", f"{API}/influxdb/config", json={"token": standin.token}).raise_for_status()
    left = drain_and_stop(service)
    requests, points = standin.snapshot()
    assert answer in [r.status for r in requests]
    counters = writer(service).counters
    assert counters["pointsRejected"] >= 2
    assert counters["pointsQueued"] == counters["pointsWritten"] + counters["pointsRejected"] + left
    assert not [p for p in points if standin.poison(p)]
    assert [p for p in points if p.tags["channel"] == "3" and p.time > poisoned], "channel 3 goes on"
    issues = service.get(f"{API}/system/issues").json()["issues"]
    rejected = [i for i in issues if i["code"] == "influxdb_points_rejected"]
    assert rejected and "not retried" in rejected[0]["message"]
    assert f"HTTP {answer} - " in rejected[0]["message"]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key) that no system CA vouches for."""
    cert, key = directory / "server.pem", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=homemeter test", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_https_checks_the_certificate_unless_told_and_trusts_a_ca_file(
    service: RunningService, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    with running(Influx2StandIn(), tls=(cert, key)) as standin:
        enable(service, standin, useSsl=True)
        failing = wait_until(
            lambda: "certificate" in (s := status(service))["status"] and s, 10, what="refusal"
        )
        assert "HTTP -1 - certificate verify failed" in failing["status"], failing
        assert not standin.snapshot()[0], "nothing reached the server"
        # The CA file: trusted, and the points kept meanwhile arrive.
        enable(service, standin, useSsl=True, caFile=str(cert))
        wait_until(lambda: status(service)["status"] == "Data sent successfully", 10, what="https writes")
        # Verification off (the device's behaviour), without a CA file.
        enable(service, standin, useSsl=True, caFile="", verifySsl=False)
        count = len(standin.snapshot()[0])
        wait_until(lambda: len(standin.snapshot()[0]) > count + 2, 10, what="unverified writes")
    # A CA file that cannot be read is refused (409), the running settings stay.
    r = service.request(
        "PATCH", f"{API}/influxdb/config", json={"caFile": str(tmp_path / "none.pem"), "verifySsl": True}
    )
    assert r.status_code == 409 and r.json()["error"].startswith("caFile: cannot use"), r.text
    assert service.get(f"{API}/influxdb/config").json()["caFile"] == ""
