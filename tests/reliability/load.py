"""Load: Digest HTTP pollers, Modbus pollers, MQTT publishing and InfluxDB writing at once.

Held when: no client error and no 5xx; the meter kept its cadence (its own `late_windows` and
`skipped_windows` counters in /metrics did not move: no window was processed more than one window
after it ended, i.e. no snapshot came later than twice its period); MQTT published every second;
InfluxDB (a real influxd) took an upload every second without an error, and holds each point the
writer wrote once; the history archive had no write error and, after the clean stop, no hole and no
duplicate hour; RSS grew under 5 % in the second half; the process's file descriptors went back to
the baseline.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.influxd import Influxd, running_influxd
from tests.integration.mosquitto import Broker, Subscriber, mosquitto
from tests.loopback import wait_until
from tests.reliability import records
from tests.reliability.clients import http_poller, modbus_blocks, modbus_poller, run_threads
from tests.reliability.report import Row, Tally
from tests.reliability.service import Homemeter, write_config

TOPIC = "soak/meter-values"
INFLUX_DB, INFLUX_MEASUREMENT = "house", "energy"
AREA = "load"


@dataclass(frozen=True)
class LoadPlan:
    duration: float = 60.0  # s of load
    http_clients: int = 100
    modbus_clients: int = 50
    http_period: float = 1.0  # s between one client's requests (meter-values, system info in turn)
    modbus_period: float = 1.0  # s between one client's rounds over every block
    warmup: float = 3.0  # s before the baseline is taken (first snapshots, MQTT connected)


def run_load(workdir: Path, plan: LoadPlan) -> list[Row]:
    """Start the service, a broker and influxd in `workdir`, load them for `plan.duration`, judge."""
    data = workdir / "data"
    write_config(data)
    with mosquitto(workdir / "mqtt") as broker, running_influxd(workdir / "influxd") as influx:
        influx.create_database(INFLUX_DB)
        svc = Homemeter(data)
        try:
            svc.start()
            rows = _loaded(svc, broker, influx, plan)
        finally:
            svc.close()
    return [*rows, _history_row(data)]


def _loaded(svc: Homemeter, broker: Broker, influx: Influxd, plan: LoadPlan) -> list[Row]:
    body = {"enabled": True, "server": "127.0.0.1", "port": broker.port, "topic": TOPIC, "frequency": 0}
    assert svc.request("PATCH", "/api/v1/custom-mqtt/config", json=body).status_code == 200
    body = {"enabled": True, "server": "127.0.0.1", "port": influx.http_port, "version": 1,
            "database": INFLUX_DB, "measurement": INFLUX_MEASUREMENT, "frequency": 1}  # fmt: skip
    assert svc.request("PATCH", "/api/v1/influxdb/config", json=body).status_code == 200
    with Subscriber(broker, TOPIC) as sub:
        sub.get(TOPIC, timeout=15)  # connected and publishing
        time.sleep(plan.warmup)  # let start-up allocations settle before the baseline
        proc = svc.process
        fds_before = proc.num_fds()
        before = svc.metrics()
        influx_before = _influx_counters(svc)
        sub.drain()

        stop, tally = threading.Event(), Tally()
        blocks = modbus_blocks(17)
        targets = [
            partial(http_poller, svc.url, svc.session(), stop, tally, plan.http_period)
            for _ in range(plan.http_clients)
        ] + [
            partial(modbus_poller, svc.modbus_port, blocks, stop, tally, plan.modbus_period)
            for _ in range(plan.modbus_clients)
        ]
        started = time.monotonic()
        threads = run_threads(targets)
        rss: list[tuple[float, int]] = []
        while (elapsed := time.monotonic() - started) < plan.duration:
            rss.append((elapsed, proc.memory_info().rss))
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(15)
        arrivals = []
        while not sub.messages.empty():
            arrivals.append(sub.messages.get_nowait().at)
        after = svc.metrics()
        influx_after = _influx_counters(svc)
    fds_after = _settled_fds(svc, fds_before)
    history = svc.get("/api/v1/system/components").json()["history"]
    return [
        *_client_rows(tally, plan, blocks),
        *_meter_rows(before, after, plan),
        _mqtt_row(arrivals, plan),
        _influx_row(svc, influx, influx_before, influx_after, plan),
        Row(
            AREA,
            "history archive follows (no write error)",
            1,
            int(history["state"] == "running" and not history["counters"].get("writeErrors")),
            f"state {history['state']}, {history['counters'].get('writeErrors', 0)} write errors, "
            f"{history['details']['pendingRows']} rows pending",
        ),
        _rss_row(rss, plan),
        Row(
            AREA,
            "file descriptors back to baseline",
            1,
            int(fds_after <= fds_before),
            f"{fds_before} before load, {fds_after} after",
        ),
    ]


def _influx_counters(svc: Homemeter) -> dict[str, int]:
    counters: dict[str, int] = svc.get("/api/v1/system/components").json()["influxdb"]["counters"]
    return counters


def _influx_row(
    svc: Homemeter, influx: Influxd, before: dict[str, int], after: dict[str, int], plan: LoadPlan
) -> Row:
    """Uploads during the load without an error; once drained, influxd holds each point written once."""

    def delta(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    def drained() -> bool:
        details = svc.get("/api/v1/system/components").json()["influxdb"]["details"]
        return bool(details["backlogPoints"] == 0)

    wait_until(drained, timeout=15, what="the InfluxDB backlog written")
    assert svc.request("PATCH", "/api/v1/influxdb/config", json={"enabled": False}).status_code == 200
    written = _influx_counters(svc).get("pointsWritten", 0)
    stored = records.stored_points(influx, INFLUX_MEASUREMENT, INFLUX_DB)
    uploads, errors = delta("uploads"), delta("uploadErrors")
    return Row(
        AREA,
        "InfluxDB writes a point every second",
        uploads + errors,
        uploads,
        f"{uploads} uploads, {errors} errors in ~{plan.duration:.0f} s; {written} lines written in all, "
        f"influxd holds {sum(stored.values())} points x 2 lines",
        ok=errors == 0 and uploads >= plan.duration - 2 and written == 2 * sum(stored.values()),
    )


def _history_row(data: Path) -> Row:
    found = records.archive(data)
    return Row(
        AREA,
        "history archive: no hole or duplicate hour",
        1,
        int(found.consistent),
        f"after the clean stop: {found.figures} (real time: the load crosses at most one hour)",
    )


def _settled_fds(svc: Homemeter, baseline: int) -> int:
    """Descriptors once the server has seen every client close (it may take a loop turn or two)."""
    try:
        return wait_until(lambda: (n := svc.process.num_fds()) <= baseline and n, timeout=10)
    except AssertionError:
        return int(svc.process.num_fds())


def _client_rows(tally: Tally, plan: LoadPlan, blocks: list[tuple[int, int]]) -> list[Row]:
    requests_ = tally["http_requests"] + tally["http_errors"]
    bad = tally["http_errors"] + tally["http_5xx"] + tally["http_other"]
    reads = tally["modbus_reads"] + tally["modbus_errors"]
    return [
        Row(
            AREA,
            f"HTTP Digest polls ({plan.http_clients} clients)",
            requests_,
            requests_ - bad,
            f"{tally['http_errors']} errors, {tally['http_5xx']} 5xx, {tally['http_other']} other, "
            f"slowest {tally.maxima.get('http_latency_s', 0) * 1000:.0f} ms",
        ),
        Row(
            AREA,
            f"Modbus reads ({plan.modbus_clients} clients, {len(blocks)} blocks each)",
            reads,
            tally["modbus_reads"],
            f"{tally['modbus_errors']} errors, slowest round "
            f"{tally.maxima.get('modbus_cycle_s', 0) * 1000:.0f} ms",
        ),
    ]


def _meter_rows(before: dict[str, float], after: dict[str, float], plan: LoadPlan) -> list[Row]:
    def delta(name: str) -> int:
        return int(after.get(name, 0) - before.get(name, 0))

    windows = delta("homemeter_meter_snapshots_total")
    late = delta("homemeter_meter_late_windows_total")
    skipped_ = delta("homemeter_meter_skipped_windows_total")
    return [
        Row(
            AREA,
            "snapshots on time (none later than 2 periods)",
            windows,
            windows - late - skipped_,
            f"{late} late and {skipped_} skipped windows; {windows} snapshots in "
            f"~{plan.duration:.0f} s (period 0.2 s)",
        ),
    ]


def _mqtt_row(arrivals: list[float], plan: LoadPlan) -> Row:
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    late = sum(g > 2.0 for g in gaps)
    expected = int(plan.duration) - 1
    return Row(
        AREA,
        "MQTT publish every second",
        max(expected, len(arrivals)),
        len(arrivals) - late,
        f"{len(arrivals)} messages, longest gap {max(gaps, default=0):.2f} s",
        ok=len(arrivals) >= expected and late == 0,
    )


def _rss_row(rss: list[tuple[float, int]], plan: LoadPlan) -> Row:
    mid = next(v for t, v in rss if t >= plan.duration / 2)
    end = rss[-1][1]
    growth = (end - mid) / mid * 100
    return Row(
        AREA,
        "RSS growth in the second half < 5 %",
        1,
        int(growth < 5),
        f"{mid / 2**20:.1f} MiB at half time, {end / 2**20:.1f} MiB at the end ({growth:+.1f} %)",
    )
