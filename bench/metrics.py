"""Cost of a Prometheus scrape (`GET /metrics`) next to the meter-values poll, in the same run (issue 15).

Starts `homemeter run` as the real service (simulator sampling, all 17 channels on, so both bodies
are their largest) and loads it with wrk, one scenario after the other on the same process:

- meter-values: `GET /api/v1/ade7953/meter-values` with Digest (bench/http/reuse.lua: a fresh
  response per request, nc + 1), the peer;
- metrics digest: `GET /metrics` with the same Digest client;
- metrics bearer: `GET /metrics` with `auth: bearer` and a fixed `Authorization: Bearer` header, as
  Prometheus sends it.

Reported per scenario: req/s, latencies, server CPU time per request (from /proc/PID/stat; steadier
than rates on this shared machine), bytes per answer, and the meter's late windows during the run
(`homemeter_meter_late_windows_total`: windows the sampler processed over a window late because the
event loop was busy). Ratios are metrics / meter-values within a repetition, median over repetitions.
Prometheus scrapes with one connection every 15 s or so; the rates here are a stress figure, the
CPU µs per scrape is what a real scraper costs.
Everything binds to 127.0.0.1, every wrk run is bounded, and only the process started here is stopped.
Usage: python bench/metrics.py [--duration 5] [--reps 3] [--conns 1,4]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# bench/http.py shadows the standard library's `http` package while this directory leads sys.path.
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    del sys.path[0]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from types import ModuleType  # noqa: E402

import requests  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from requests.auth import HTTPDigestAuth  # noqa: E402

from homemeter.store.credentials import REALM, USERNAME  # noqa: E402


def _load_http_bench() -> ModuleType:
    """bench/http.py under another name: its server start-up, Digest checks and wrk scripts."""
    spec = importlib.util.spec_from_file_location("bench_http", HERE / "http.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


HTTP = _load_http_bench()
LUA = HERE / "http"
METER_VALUES = "/api/v1/ade7953/meter-values"
METRICS = "/metrics"
TOKEN = "bench-scrape-token-0123456789abcdef"
SCENARIOS = ("meter-values", "metrics digest", "metrics bearer")
WARMUP_S = 2


@dataclass(frozen=True)
class Run:
    rep: int
    scenario: str
    conns: int
    rate: float  # req/s answered 2xx
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # server CPU per request
    body_bytes: float  # bytes per answer (headers included)
    late_windows: int  # meter windows processed late during the run


def wrk(url: str, conns: int, seconds: int, scenario: str) -> dict[str, float]:
    argv = ["wrk", "-t", "1", "-c", str(conns), "-d", f"{seconds}s", "--timeout", "5s"]
    if scenario == "metrics bearer":
        argv += ["-H", f"Authorization: Bearer {TOKEN}", "-s", str(LUA / "report.lua"), url]
    else:
        nonces = [HTTP.challenge_nonce(url) for _ in range(conns)]
        argv += ["-s", str(LUA / "reuse.lua"), url, "--", USERNAME, HTTP.PASSWORD, REALM, "1", *nonces]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    found = HTTP.RESULT.search(done.stdout)
    if not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in found.group(1).split())}


def mode(scenario: str) -> str:
    return "bearer" if scenario == "metrics bearer" else "digest"


def set_metrics_auth(base: str, auth: str) -> None:
    body = {"auth": auth, "token": TOKEN} if auth == "bearer" else {"auth": auth}
    reply = requests.patch(
        f"{base}/api/v1/metrics/config", json=body, auth=HTTPDigestAuth(USERNAME, HTTP.PASSWORD), timeout=10
    )
    assert reply.status_code == 200, reply.text


def late_windows(base: str, auth: str) -> int:
    """The meter's late-window counter, read from /metrics under the current `auth`."""
    with requests.Session() as session:
        if auth == "bearer":
            session.headers["authorization"] = f"Bearer {TOKEN}"
        else:
            session.auth = HTTPDigestAuth(USERNAME, HTTP.PASSWORD)
        reply = session.get(base + METRICS, timeout=10)
    reply.raise_for_status()
    for family in text_string_to_metric_families(reply.text):
        if family.name == "homemeter_meter_late_windows":
            return int(family.samples[0].value)
    raise RuntimeError("no homemeter_meter_late_windows_total in the exposition")


@dataclass(frozen=True)
class Target:
    """The running service in one repetition."""

    rep: int
    base: str  # http://127.0.0.1:PORT
    pid: int


def measure(target: Target, scenario: str, conns: int, seconds: int) -> Run:
    rep, base, pid = target.rep, target.base, target.pid
    path = METER_VALUES if scenario == "meter-values" else METRICS
    auth = mode(scenario)
    set_metrics_auth(base, auth)
    late0 = late_windows(base, auth)
    cpu0, t0 = HTTP.cpu_seconds(pid), time.monotonic()
    r = wrk(base + path, conns, seconds, scenario)
    used = HTTP.cpu_seconds(pid) - cpu0
    elapsed = time.monotonic() - t0
    late = late_windows(base, auth) - late0
    secs = r["duration_us"] / 1e6
    ok = r["requests"] - r["err_status"]
    errors = int(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"] + r["err_status"])
    run = Run(rep, scenario, conns, ok / secs, r["p50_us"] / 1000, r["p99_us"] / 1000, errors,
              1e6 * used / max(1.0, ok), r["bytes"] / max(1.0, r["requests"]), late)  # fmt: skip
    print(
        f"rep {rep + 1} {scenario:15s} {conns:2d} conn {run.rate:8,.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
        f"p99 {run.p99_ms:6.2f} ms  errors {errors}  server CPU {100 * used / elapsed:3.0f}% "
        f"{run.cpu_us:5.0f} us/req  {run.body_bytes:6,.0f} B  late windows {late}",
        flush=True,
    )
    return run


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(runs: list[Run], args: argparse.Namespace) -> str:
    pick = {(r.rep, r.scenario, r.conns): r for r in runs}
    lines = [
        f"wrk -t1, {args.duration} s per run, {args.reps} repetitions, medians [min-max]; server and wrk "
        f"share {os.cpu_count()} cores. CPU µs: server CPU time per request. x mv: same-repetition "
        "ratio to meter-values (rate: higher is better; CPU: lower is better).",
    ]
    for conns in args.conns:
        lines += [
            f"\n#### {conns} connection{'s' if conns > 1 else ''}\n",
            "| scenario | req/s | x mv | p50 ms | p99 ms | CPU µs/req | x mv | bytes | late | errors |",
            "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for scenario in SCENARIOS:
            rows = [r for r in runs if r.scenario == scenario and r.conns == conns]
            peers = [pick[(r.rep, "meter-values", conns)] for r in rows]
            rate_x = [r.rate / p.rate for r, p in zip(rows, peers, strict=True)]
            cpu_x = [r.cpu_us / p.cpu_us for r, p in zip(rows, peers, strict=True)]
            rates = [r.rate for r in rows]
            lines.append(
                f"| {scenario} | {median(rates):,.0f} [{min(rates):,.0f}-{max(rates):,.0f}] | "
                f"{median(rate_x):.3f} | {median([r.p50_ms for r in rows]):.2f} | "
                f"{median([r.p99_ms for r in rows]):.2f} | {median([r.cpu_us for r in rows]):,.0f} | "
                f"{median(cpu_x):.1f} | {median([r.body_bytes for r in rows]):,.0f} | "
                f"{sum(r.late_windows for r in rows)} | {sum(r.errors for r in rows)} |"
            )
    lines.append(f"\npython {platform.python_version()}, {HTTP.wrk_version()}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--conns",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, 4],
        help="connection counts (default 1,4; a Prometheus server scrapes with one)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is missing: scripts/system-deps.sh wrk (as root) or apt-get install wrk")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="homemeter-bench-metrics-") as tmp:
        work = Path(tmp)
        argv, env, port = HTTP.homemeter(work / "data")
        base = f"http://127.0.0.1:{port}"
        with HTTP.server(argv, env, port, work / "homemeter.log") as proc:
            HTTP.check_homemeter(base + METER_VALUES)
            HTTP.full_body(base + METER_VALUES)
            for scenario in SCENARIOS:  # warm-up: imports, caches, first renders
                set_metrics_auth(base, mode(scenario))
                wrk(base + (METER_VALUES if scenario == "meter-values" else METRICS), 1, WARMUP_S, scenario)
            for rep in range(args.reps):
                order = SCENARIOS[rep % 3 :] + SCENARIOS[: rep % 3]  # rotated: load bursts hit all alike
                for conns in args.conns:
                    target = Target(rep, base, proc.pid)
                    runs += [measure(target, s, conns, args.duration) for s in order]
    print("\n" + report(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
