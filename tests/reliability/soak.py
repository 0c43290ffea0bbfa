"""`make soak`: the full reliability run (load, hostile clients, faults), one table at the end.

    python -m tests.reliability.soak [--duration 60] [--http 100] [--modbus 50] [--cycles 100] [--outages 10]

Exit status 1 when a check failed. The short versions of the same scenarios run in `make test`
(tests/reliability/test_*.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.reliability import faults, hostile
from tests.reliability.load import LoadPlan, run_load
from tests.reliability.outages import OutagePlan, run_outages
from tests.reliability.report import Row, print_table
from tests.reliability.service import Homemeter, write_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="s of load (default 60)")
    parser.add_argument("--http", type=int, default=100, help="HTTP Digest clients (default 100)")
    parser.add_argument("--modbus", type=int, default=50, help="Modbus clients (default 50)")
    parser.add_argument("--cycles", type=int, default=100, help="kill -9 cycles (default 100)")
    parser.add_argument(
        "--outages", type=int, default=10, help="broker and influxd kill -9/restart cycles (default 10)"
    )
    parser.add_argument("--logins", type=int, default=10_000, help="failed logins (default 10000)")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="homemeter-soak-") as tmp:
        work = Path(tmp)

        def step(name: str, fn: Callable[[Path], list[Row]]) -> None:
            print(f"soak: {name} ...", file=sys.stderr, flush=True)
            (work / name).mkdir()
            rows.extend(fn(work / name))

        plan = LoadPlan(duration=args.duration, http_clients=args.http, modbus_clients=args.modbus)
        step("load", lambda w: run_load(w, plan))
        step("hostile", lambda w: _hostile(w, args.logins))
        step("kill9", lambda w: faults.kill9_cycles(w, args.cycles))
        step("outages", lambda w: run_outages(w, OutagePlan(cycles=args.outages)))
        step("disk-full", faults.disk_full)
        step("read-only", faults.read_only)
        step("corrupt-config", faults.corrupt_config)
    title = (
        f"make soak: {args.duration:.0f} s load ({args.http} HTTP + {args.modbus} Modbus clients, "
        f"MQTT, InfluxDB), {args.cycles} kill -9 cycles, {args.outages} broker and influxd outages, "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return 0 if print_table(rows, title) else 1


def _hostile(work: Path, logins: int) -> list[Row]:
    data = work / "data"
    write_config(data)
    svc = Homemeter(data).start()
    try:
        return [
            *hostile.idle_modbus(svc),
            *hostile.slowloris(svc, connections=200),
            *hostile.oversize_bodies(svc),
            *hostile.slow_bodies(svc, connections=100),
            *hostile.client_gone_mid_body(svc),
            *hostile.failed_logins(svc, attempts=logins),  # last: it blocks 127.0.0.1
        ]
    finally:
        svc.close()


if __name__ == "__main__":
    sys.exit(main())
