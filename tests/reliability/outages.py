"""Outages of the peers: the MQTT broker and InfluxDB killed (-9) and restarted in a loop.

A real Mosquitto and a real influxd 1.x on free loopback ports; homemeter publishes every second and
writes a point every second. Each cycle kills both, keeps them dead for `down` s, starts them again
and waits for homemeter to recover. Held when:

- status is honest: from `NOTICE` s after the kill until the restart, no poll of
  `/system/components` says MQTT is connected or InfluxDB "Data sent successfully", and InfluxDB's
  `influxdb_upload_failing` is active in `/system/issues`; after the restart both say connected
  again and the issue is cleared;
- MQTT reconnects and publishes again (a subscriber on the new broker receives the topic);
- InfluxDB: every point queued during the outages is in influxd once the backlog is empty: the
  writer's own count of points written equals what influxd holds (each point once, none twice under
  another time), and channel 0, read every window, has a point every second from the first to the
  last (no gap over the run);
- no leak: the event loop's tasks (`homemeter_asyncio_tasks`) and the process's file descriptors
  back to their baseline after the last recovery, RSS within 5 % of its size after the first.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.influxd import Influxd
from tests.integration.mosquitto import Broker, Subscriber
from tests.loopback import free_port, wait_until
from tests.reliability.report import Row
from tests.reliability.service import Homemeter, write_config

AREA = "outages"
TOPIC = "outage/meter-values"
DATABASE = "house"
MEASUREMENT = "energy"
NOTICE = 2.0  # s after a kill by which the status must say so (MQTT sees EOF, InfluxDB's next write fails)
RECOVERY = 30.0  # s after a restart: MQTT's back-off (5, 10 s) plus InfluxDB's (1, 2, 4, 8 s)
MAX_GAP_S = 2.0  # between two channel-0 points written every second


@dataclass(frozen=True)
class OutagePlan:
    cycles: int = 10
    down: float = 5.0  # s both peers stay dead: InfluxDB's issue is raised after 3 failed attempts
    settle: float = 2.0  # s of normal running between a recovery and the next kill


@dataclass
class Sample:
    """One poll of the status endpoints."""

    at: float
    mqtt_connected: bool
    influx_status: str
    issues: frozenset[str]


@dataclass
class Watch:
    """Polls `/system/components` and `/system/issues` every 0.2 s in a thread."""

    svc: Homemeter
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with self.svc.session() as session:
            while not self.stop.wait(0.2):
                try:
                    comps = session.get(f"{self.svc.url}/api/v1/system/components", timeout=5).json()
                    issues = session.get(f"{self.svc.url}/api/v1/system/issues", timeout=5).json()
                except (requests.RequestException, ValueError):
                    continue
                active = frozenset(i["code"] for i in issues["issues"] if i["state"].startswith("active"))
                self.samples.append(
                    Sample(
                        time.monotonic(),
                        bool(comps["mqtt"]["details"]["connected"]),
                        str(comps["influxdb"]["details"]["status"]),
                        active,
                    )
                )

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]


def run_outages(workdir: Path, plan: OutagePlan) -> list[Row]:
    data = workdir / "data"
    broker_dir = workdir / "mqtt"
    broker_dir.mkdir(parents=True)
    broker = Broker(broker_dir, free_port())
    influx = Influxd(workdir / "influxd")
    broker.start()
    try:
        influx.start()
        influx.create_database(DATABASE)
        write_config(
            data,
            mqtt={
                "enabled": True, "server": "127.0.0.1", "port": broker.port, "topic": TOPIC, "frequency": 0,
            },
            influxdb={
                "enabled": True, "server": "127.0.0.1", "port": influx.http_port, "version": 1,
                "database": DATABASE, "measurement": MEASUREMENT, "frequency": 1,
            },
        )  # fmt: skip
        svc = Homemeter(data).start()
        try:
            return _cycles(svc, broker, influx, plan)
        finally:
            svc.close()
    finally:
        broker.stop()
        influx.stop()


def _components(svc: Homemeter) -> dict[str, Any]:
    doc: dict[str, Any] = svc.get("/api/v1/system/components").json()
    return doc


def _recovered(svc: Homemeter) -> bool:
    comps = _components(svc)
    influx = comps["influxdb"]["details"]
    return bool(
        comps["mqtt"]["details"]["connected"]
        and influx["status"] == "Data sent successfully"
        and influx["backlogPoints"] == 0
    )


def _published(broker: Broker, timeout: float) -> bool:
    """A meter-values message arrives on a fresh subscription within `timeout` s."""
    with Subscriber(broker, TOPIC) as sub:
        try:
            sub.get(TOPIC, timeout=timeout)
        except AssertionError:
            return False
    return True


def _leak_figures(svc: Homemeter) -> tuple[int, int]:
    m = svc.metrics()
    return int(m["homemeter_asyncio_tasks"]), int(m["process_open_fds"])


def _cycles(svc: Homemeter, broker: Broker, influx: Influxd, plan: OutagePlan) -> list[Row]:
    wait_until(lambda: _recovered(svc), timeout=20, what="MQTT connected and InfluxDB writing")
    assert _published(broker, 10), "no MQTT message before the first outage"
    time.sleep(plan.settle)
    tasks0, fds0 = min(_leak_figures(svc) for _ in range(3))
    watch = Watch(svc)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    honest = republished = noticed = cleared = 0
    recoveries: list[float] = []
    lies: list[str] = []
    rss_first = 0
    try:
        for cycle in range(plan.cycles):
            killed = time.monotonic()
            broker.stop()  # SIGKILL
            influx.kill()
            time.sleep(plan.down)
            restarted = time.monotonic()
            broker.start()
            influx.start()
            try:
                wait_until(lambda: _recovered(svc), timeout=RECOVERY, what="recovery")
            except AssertionError:
                recoveries.append(float("inf"))
            else:
                recoveries.append(time.monotonic() - restarted)
            republished += _published(broker, 15)
            time.sleep(0.5)  # a poll after the recovery
            down = watch.between(killed + NOTICE, restarted)
            wrong = [s for s in down if s.mqtt_connected or s.influx_status == "Data sent successfully"]
            lies += [f"cycle {cycle}: {s.at - killed:.1f} s after the kill" for s in wrong[:1]]
            honest += bool(down) and not wrong
            noticed += any("influxdb_upload_failing" in s.issues for s in down)
            after = watch.samples[-1]
            cleared += after.at > restarted and "influxdb_upload_failing" not in after.issues
            if cycle == 0:
                rss_first = svc.process.memory_info().rss
            time.sleep(plan.settle)
    finally:
        watch.stop.set()
        thread.join(10)
    rss_last = svc.process.memory_info().rss
    tasks1, fds1 = _settled(svc, tasks0, fds0)
    points = _influx_rows(svc, influx)
    return [
        Row(
            AREA,
            "status honest while the broker and influxd are down",
            plan.cycles,
            honest,
            f"{len(watch.samples)} polls; "
            + (
                "; ".join(lies)
                if lies
                else f"none said connected from {NOTICE:.0f} s after a kill to the restart"
            ),
        ),
        Row(
            AREA,
            "influxdb_upload_failing raised while down, cleared after",
            2 * plan.cycles,
            noticed + cleared,
            f"raised in {noticed} of {plan.cycles} outages ({plan.down:.0f} s each), cleared in {cleared}",
        ),
        Row(
            AREA,
            "MQTT and InfluxDB recover after the restart",
            plan.cycles,
            sum(r <= RECOVERY for r in recoveries),
            f"slowest {max(recoveries):.1f} s after the restart (limit {RECOVERY:.0f} s: the back-offs)",
        ),
        Row(
            AREA,
            "MQTT publishes again on the restarted broker",
            plan.cycles,
            republished,
            f"a message on {TOPIC} after {republished} of {plan.cycles} restarts",
        ),
        *points,
        Row(
            AREA,
            "no task or descriptor leak, memory flat",
            3,
            int(tasks1 <= tasks0) + int(fds1 <= fds0) + int(rss_last <= rss_first * 1.05),
            f"asyncio tasks {tasks0} -> {tasks1}, descriptors {fds0} -> {fds1}, RSS "
            f"{rss_first / 2**20:.1f} MiB after the first recovery -> {rss_last / 2**20:.1f} MiB "
            f"after the last ({(rss_last - rss_first) / rss_first * 100:+.1f} %)",
        ),
    ]


def _settled(svc: Homemeter, tasks0: int, fds0: int) -> tuple[int, int]:
    """Tasks and descriptors once back at their baseline (a request in flight may count for a moment)."""
    try:
        return wait_until(lambda: (f := _leak_figures(svc))[0] <= tasks0 and f[1] <= fds0 and f, timeout=10)
    except AssertionError:
        return _leak_figures(svc)


def _influx_rows(svc: Homemeter, influx: Influxd) -> list[Row]:
    """Stop the writer (nothing in flight), then compare its count with what influxd holds."""
    r = svc.request("PATCH", "/api/v1/influxdb/config", json={"enabled": False})
    assert r.status_code == 200, r.text
    counters = _components(svc)["influxdb"]["counters"]
    written, queued = int(counters.get("pointsWritten", 0)), int(counters.get("pointsQueued", 0))
    rows = influx.rows(f'SELECT * FROM "{MEASUREMENT}" GROUP BY *', DATABASE)
    per_point: dict[tuple[str, int], int] = {}
    for row in rows:
        key = (row["channel"], row["time"])
        per_point[key] = per_point.get(key, 0) + 1
    twice = sum(n > 1 for n in per_point.values())
    zero = sorted(t for channel, t in per_point if channel == "0")
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(zero)]
    holes = sum(g > MAX_GAP_S for g in gaps)
    return [
        Row(
            AREA,
            "InfluxDB: every queued point in influxd once",
            queued,
            written if written == 2 * len(rows) and not twice else 0,
            f"{queued} lines queued, {written} written, influxd holds {len(rows)} points x 2 lines; "
            f"{twice} points stored twice",
        ),
        Row(
            AREA,
            "InfluxDB: channel 0 every second, no gap over the run",
            max(len(gaps), 1),
            len(gaps) - holes,
            f"{len(zero)} points over {(zero[-1] - zero[0]) / 1e9 if zero else 0:.0f} s, "
            f"longest gap {max(gaps, default=0):.1f} s (limit {MAX_GAP_S:.0f} s)",
        ),
    ]
