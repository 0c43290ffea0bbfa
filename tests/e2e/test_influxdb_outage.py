"""An InfluxDB outage with a `kill -9` of homemeter in the middle: every point still arrives, once.

`homemeter run` (a real process) writes to a real influxd once a second. influxd is stopped; the
points queue on disk; homemeter is killed with SIGKILL and started again while influxd is still down
(the queue survives and keeps growing); influxd returns and the backlog drains. Then:
- channel 0 (read every window) has a point every second throughout the outage, except while
  homemeter itself was not running;
- influxd's own write counter for its last run equals the new points (two lines per point): nothing
  written twice, but the batch in flight when influxd was stopped, whose answer was lost (allowed:
  InfluxDB overwrites the identical points).
The simulator runs at real speed: a restarted process starts its (simulated) clock from the wall
clock, so a faster one would repeat the first run's simulated times.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.e2e.conftest import PASSWORD, Service
from tests.influxd import Influxd, running_influxd
from tests.loopback import free_port, wait_until

API = "/api/v1"
Q = 'SELECT * FROM "meter" GROUP BY *'


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    with running_influxd(tmp_path / "influxd") as server:
        yield server


def influx_status(svc: Service) -> dict[str, Any]:
    doc: dict[str, Any] = svc.get(f"{API}/influxdb/status").json()
    return doc


def keys(influxd: Influxd) -> set[tuple[str, int]]:
    return {(r["channel"], r["time"]) for r in influxd.rows(Q, "house")}


@pytest.mark.serial  # measures cadence (a point every second): runs alone (tests/conftest.py)
def test_outage_and_kill_9_lose_nothing_and_write_nothing_twice(
    service_factory: type[Service], influxd: Influxd, tmp_path: Path
) -> None:
    influxd.create_database("house")
    data = tmp_path / "data"
    first = service_factory(data).start()
    config = {"enabled": True, "server": "127.0.0.1", "port": influxd.http_port, "version": 1,
              "database": "house", "frequency": 1}  # fmt: skip
    auth = HTTPDigestAuth("admin", PASSWORD)
    requests.patch(f"{first.url}{API}/influxdb/config", json=config, auth=auth, timeout=5).raise_for_status()
    wait_until(lambda: len({t for c, t in keys(influxd) if c == "0"}) >= 2, 15, what="first points")

    influxd.stop()
    outage = time.time()
    before = wait_until(
        lambda: (n := influx_status(first)["backlogPoints"]) >= 60 and n, 15, what="a backlog"
    )
    assert influx_status(first)["status"].startswith("Failed to send data: HTTP -1 - connection refused")
    assert first.proc is not None
    first.proc.kill()  # SIGKILL: no clean stop, no final save
    first.proc.wait(10)
    killed = time.time()

    second = service_factory(data).start()
    # The queue came back from disk, and the outage goes on being recorded.
    wait_until(lambda: influx_status(second)["backlogPoints"] > before + 30, 15, what="the queue kept")
    assert influx_status(second)["backlogOldestAge"] >= killed - outage - 1

    # What influxd holds from before the outage, read on a port homemeter does not know.
    peek = Influxd(influxd.directory, http_port=free_port(), rpc_port=free_port()).start()
    try:
        stored_before = keys(peek)
    finally:
        peek.stop()

    influxd.start()
    back = time.time()
    wait_until(lambda: influx_status(second)["backlogPoints"] == 0, 30, what="the backlog written")
    code, _, _ = second.stop()  # a clean stop: the request in flight is answered first
    assert code == 0
    written = influxd.points_written()
    stored = keys(influxd)

    new = stored - stored_before
    again = written - 2 * len(new)  # lines written a second time
    assert 0 <= again <= 34, (written, len(new))  # at most the batch in flight when influxd stopped

    zero = sorted(t / 1e9 for c, t in stored if c == "0")
    assert zero[0] < outage < back < zero[-1]
    # One hole: from the last reading of the killed process to the first of the new one. Elsewhere
    # a point every second (a little late at most, on a busy machine).
    hole = [(a, b) for a, b in itertools.pairwise(zero) if a <= killed <= b]
    assert len(hole) == 1 and outage < hole[0][0] and hole[0][1] < back, (hole, outage, killed, back)
    gaps = [(a, b) for a, b in itertools.pairwise(zero) if b - a > 2.5 and (a, b) != hole[0]]
    assert not gaps, gaps
    assert [t for t in zero if outage < t < hole[0][0]], "points of the outage before the kill"
    assert [t for t in zero if hole[0][1] <= t < back], "points of the outage after the restart"
