"""REST meter-values throughput with Digest auth, against a bare Starlette endpoint (issue 4).

Starts homemeter as the real service (simulator sampling) and a bare Starlette app under uvicorn
(uvloop, httptools, no access log) serving the same bytes without auth, and loads them in turn with
wrk at 1 and 32 connections. Scenarios:

- bare: GET of the fixed body, no auth (the framework floor);
- digest: every request authorised with a freshly computed response, nc+1 on its nonce, one
  nonce per connection (bench/http/reuse.lua), as requests and httpx do between challenges;
- handshake: a 401 challenge then an authorised request on its nonce, as Home Assistant does on
  every poll (bench/http/handshake.lua), reported as full pairs/s;
- routed: digest, but through Starlette's router instead of the meter-values fast path.

Every repetition starts both peers fresh and warms them up (the idle peer costs ~1 % of a core).
Each connection count's time is cut into slices: in each slice every scenario runs once, back to
back, in an order that rotates per repetition and reverses every other slice. A scenario's ratio to
bare is taken within its slice, and the median over all slices is reported: on this VM the whole
machine's speed changes by up to 1.7x from one second to the next (bench/modbus/README.md), so only
runs seconds apart compare fairly.
Everything binds to 127.0.0.1, every wrk run is bounded, and only processes started here are stopped.
Usage: python bench/http.py [--duration 10] [--slices 5] [--reps 3] [--conns 1,32]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This file is named for its subject, which shadows the standard library's `http` package for
# anything imported while the script's directory leads sys.path (requests imports http.client).
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    del sys.path[0]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import requests  # noqa: E402
from requests.auth import HTTPDigestAuth  # noqa: E402

from homemeter.store.credentials import REALM, USERNAME  # noqa: E402

LUA = HERE / "http"
BIN = Path(sys.executable).parent
PATH = "/api/v1/ade7953/meter-values"
CHANNELS = 17  # homemeter's default and the device's maximum
PASSWORD = "bench-password"
GOAL_RATIO, GOAL_P99_MS, GOAL_CONNS = 0.8, 20.0, 32
WARMUP_S = 2
# (name, unit) in table order; "routed" is digest through Starlette's router instead of the fast
# path (an unknown query parameter takes the same body past FastRoute): what the fast path buys.
SCENARIOS = (("bare", "req/s"), ("digest", "req/s"), ("handshake", "pairs/s"), ("routed", "req/s"))
RESULT = re.compile(r"^WRKRESULT (.*)$", re.M)


@dataclass(frozen=True)
class Run:
    """One wrk run. `rate` is req/s (pairs/s for handshake); latencies per request, in ms."""

    rep: int
    slice: int
    scenario: str
    conns: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float  # % of one core
    cpu_us: float  # server CPU per request (per pair for handshake): steadier than rates here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until its port answers HTTP, and stop exactly that process after."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not listen on {port} within 20 s") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def homemeter(data_dir: Path) -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    argv = [
        str(BIN / "homemeter"),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "WARNING",
        "run",
        "--bind",
        "127.0.0.1",
        "--http-port",
        str(port),
        "--modbus-port",
        str(free_port()),
        "--no-mdns",
    ]
    return argv, {"HOMEMETER_ADMIN_PASSWORD": PASSWORD}, port


def bare(body_file: Path) -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    argv = [
        str(BIN / "uvicorn"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--app-dir",
        str(LUA),
        "bare_app:app",
    ]
    return argv, {"BARE_BODY": str(body_file), "BARE_PATH": PATH}, port


def challenge_nonce(url: str) -> str:
    reply = requests.get(url, timeout=5)
    found = re.search(r'nonce="([^"]+)"', reply.headers.get("www-authenticate", ""))
    if reply.status_code != 401 or not found:
        raise RuntimeError(f"no Digest challenge from {url}: {reply.status_code}")
    return found.group(1)


def check_homemeter(url: str) -> None:
    """Fail early unless auth behaves as a client expects; then activate every channel."""
    assert requests.get(url, timeout=5).status_code == 401, "meter-values must require auth"
    wrong = requests.get(url, auth=HTTPDigestAuth(USERNAME, "not-it"), timeout=5)
    assert wrong.status_code == 401, f"wrong password answered {wrong.status_code}"
    api = url.rsplit("/", 1)[0]
    with requests.Session() as session:
        session.auth = HTTPDigestAuth(USERNAME, PASSWORD)
        channels = session.get(f"{api}/channel", timeout=5).json()
        # Only channel 0 is active out of the box; the benchmark serves the largest body.
        reply = session.put(f"{api}/channels", json=[c | {"active": True} for c in channels], timeout=5)
        assert reply.status_code == 200, reply.text


def full_body(url: str) -> bytes:
    """meter-values once every channel has a reading (multiplexed ones take a few seconds)."""
    with requests.Session() as session:
        session.auth = HTTPDigestAuth(USERNAME, PASSWORD)
        deadline = time.monotonic() + 30
        while True:  # one nonce, nc 1, 2, ...
            reply = session.get(url, timeout=5)
            assert reply.status_code == 200, f"authorised request answered {reply.status_code}"
            if len(json.loads(reply.content)) == CHANNELS:
                return reply.content
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {CHANNELS} channels have a reading after 30 s")
            time.sleep(0.5)


def wrk(url: str, conns: int, seconds: int, threads: int, scenario: str) -> dict[str, float]:
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "5s"]
    if scenario == "bare":
        argv += ["-s", str(LUA / "report.lua"), url]
    elif scenario in ("digest", "routed"):
        nonces = [challenge_nonce(url) for _ in range(conns)]
        argv += ["-s", str(LUA / "reuse.lua"), url, "--", USERNAME, PASSWORD, REALM, str(threads), *nonces]
    else:
        argv += ["-s", str(LUA / "handshake.lua"), url, "--", USERNAME, PASSWORD, REALM]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    found = RESULT.search(done.stdout)
    if not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in found.group(1).split())}


@dataclass(frozen=True)
class Target:
    """A started server in one repetition."""

    rep: int
    url: str
    pid: int


def measure(target: Target, scenario: str, conns: int, part: int, args: argparse.Namespace) -> Run:
    """One slice of one scenario: wrk for `--duration / --slices` seconds (at least 1)."""
    rep, url, pid = target.rep, target.url, target.pid
    if scenario == "routed":
        url += "?via=router"
    threads = min(args.threads, conns)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    r = wrk(url, conns, max(1, round(args.duration / args.slices)), threads, scenario)
    used = cpu_seconds(pid) - cpu0
    cpu = 100 * used / (time.monotonic() - t0)
    secs = r["duration_us"] / 1e6
    socket_errors = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
    if scenario == "handshake":
        ok, challenged = r.get("status_200", 0.0), r.get("status_401", 0.0)
        rate = min(ok, challenged) / secs
        errors = socket_errors + r["requests"] - ok - challenged
    else:
        rate = (r["requests"] - r["err_status"]) / secs
        errors = socket_errors + r["err_status"]
    run = Run(
        rep,
        part,
        scenario,
        conns,
        rate,
        r["p50_us"] / 1000,
        r["p99_us"] / 1000,
        int(errors),
        cpu,
        1e6 * used / max(1.0, rate * secs),
    )
    unit = "pairs/s" if scenario == "handshake" else "req/s"
    print(
        f"rep {rep + 1}.{part + 1} {scenario:9s} {conns:3d} conn {rate:9,.0f} {unit:7s} "
        f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  errors {run.errors}  "
        f"server CPU {cpu:3.0f}% {run.cpu_us:4.0f} us",
        flush=True,
    )
    return run


def run_rep(rep: int, work: Path, body_file: Path, args: argparse.Namespace) -> list[Run]:
    """Both servers fresh; each connection count runs every scenario back to back in each slice
    (order rotated per repetition, reversed every other slice), so the machine's state changes hit
    the runs a ratio compares alike."""
    with ExitStack() as stack:
        targets = {}
        for peer, (argv, env, port) in (("homemeter", homemeter(work / "data")), ("bare", bare(body_file))):
            proc = stack.enter_context(server(argv, env, port, work / f"{peer}-{rep}.log"))
            targets[peer] = Target(rep, f"http://127.0.0.1:{port}{PATH}", proc.pid)
        full_body(targets["homemeter"].url)
        wrk(targets["homemeter"].url, GOAL_CONNS, WARMUP_S, 1, "digest")
        wrk(targets["bare"].url, GOAL_CONNS, WARMUP_S, 1, "bare")
        names = [name for name, _ in SCENARIOS]
        order = names[rep % len(names) :] + names[: rep % len(names)]
        return [
            measure(targets["bare" if s == "bare" else "homemeter"], s, conns, part, args)
            for conns in args.conns
            for part in range(args.slices)
            for s in (order if part % 2 == 0 else order[::-1])
        ]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    return out.split(" Copyright")[0].strip()


def report(runs: list[Run], args: argparse.Namespace, body_len: int) -> str:
    pick = {(r.rep, r.slice, r.scenario, r.conns): r for r in runs}

    def ratios(scenario: str, conns: int) -> list[float]:
        """Rate / bare rate of the same slice, for every slice of every repetition."""
        return [
            run.rate / bare.rate
            for (rep, part, name, n), run in pick.items()
            if (name, n) == (scenario, conns) and (bare := pick.get((rep, part, "bare", conns)))
        ]

    lines = [
        f"GET {PATH} ({body_len:,}-byte body), wrk -t{args.threads}, {args.duration} s per scenario "
        f"in {args.slices} slices taken in turns, {args.reps} repetitions, medians [min-max over "
        f"slices]; server and wrk share {os.cpu_count()} cores. x bare: rate / bare rate of the same "
        "slice. CPU µs: server CPU "
        "time per request (per pair for handshake), less sensitive to other load on the machine "
        "than rates. Handshake: 401 + authorised request = one pair; its latencies are per request.",
    ]
    for conns in args.conns:
        lines += [
            f"\n#### {conns} connection{'s' if conns > 1 else ''}\n",
            "| scenario | rate | range | p50 ms | p99 ms | errors | server CPU | CPU µs | x bare |",
            "|:--|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for scenario, unit in SCENARIOS:
            rows = [r for r in runs if r.scenario == scenario and r.conns == conns]
            rates = [r.rate for r in rows]
            pairs = ratios(scenario, conns)
            lines.append(
                f"| {scenario} | {median(rates):,.0f} {unit} | {min(rates):,.0f}-{max(rates):,.0f} | "
                f"{median([r.p50_ms for r in rows]):.2f} | {median([r.p99_ms for r in rows]):.2f} | "
                f"{sum(r.errors for r in rows)} | {median([r.server_cpu for r in rows]):.0f}% | "
                f"{median([r.cpu_us for r in rows]):.0f} | "
                f"{median(pairs):.2f} [{min(pairs):.2f}-{max(pairs):.2f}] |"
            )
    goal = [r for r in runs if r.conns == GOAL_CONNS]
    ratio = median(ratios("digest", GOAL_CONNS))
    p99 = median([r.p99_ms for r in goal if r.scenario == "digest"])
    p99_hs = median([r.p99_ms for r in goal if r.scenario == "handshake"])
    errors = sum(r.errors for r in runs)
    lines += [
        f"\n#### Goals at {GOAL_CONNS} connections\n",
        f"- digest throughput >= {GOAL_RATIO}x bare: {ratio:.2f}x: {verdict(ratio >= GOAL_RATIO)}",
        f"- digest p99 < {GOAL_P99_MS:g} ms: {p99:.2f} ms: {verdict(p99 < GOAL_P99_MS)}",
        f"- handshake p99 < {GOAL_P99_MS:g} ms (per request): {p99_hs:.2f} ms: "
        f"{verdict(p99_hs < GOAL_P99_MS)}",
        f"- errors (socket, unexpected status): {errors}: {verdict(errors == 0)}",
        f"\npython {platform.python_version()}, {wrk_version()}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds per scenario and connection count (default 10)"
    )
    parser.add_argument(
        "--slices", type=int, default=5, help="slices per scenario, the scenarios taking turns (default 5)"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--conns",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, GOAL_CONNS],
        help="connection counts (default 1,32)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1: a core for the server)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is missing: scripts/system-deps.sh wrk (as root) or apt-get install wrk")
    if GOAL_CONNS not in args.conns:
        parser.error(f"--conns must include {GOAL_CONNS}, the goals are stated there")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="homemeter-bench-http-") as tmp:
        work = Path(tmp)
        argv, env, port = homemeter(work / "data")
        url = f"http://127.0.0.1:{port}{PATH}"
        with server(argv, env, port, work / "check.log"):
            check_homemeter(url)
            body = full_body(url)
        body_file = work / "meter-values.json"
        body_file.write_bytes(body)
        for rep in range(args.reps):
            runs += run_rep(rep, work, body_file, args)
    print("\n" + report(runs, args, len(body)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
