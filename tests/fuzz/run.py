"""`make fuzz`: every fuzz target with many examples, random bytes on a live Modbus socket, and
schemathesis against every operation of a live service; one table at the end.

    python -m tests.fuzz.run [--examples 5000] [--api-examples 30]

Exit status 1 when a check failed. Short versions: tests/fuzz/test_*.py in `make test`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.fuzz.api import run_schemathesis
from tests.fuzz.socket_noise import modbus_noise
from tests.fuzz.targets import TARGETS, Target
from tests.reliability.report import Row, print_table
from tests.reliability.service import Homemeter, write_config


def fuzz_target(target: Target, examples: int) -> Row:
    outcomes: Counter[str] = Counter()
    slowest = 0.0

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(target.strategy)
    def run(value: Any) -> None:
        nonlocal slowest
        started = time.perf_counter()
        outcomes[target.check(value)] += 1
        if sum(outcomes.values()) > 1:  # the first one builds the caches (snapshot, configuration)
            slowest = max(slowest, time.perf_counter() - started)

    failure = ""
    try:
        run()
    except Exception as err:  # the finding: shown in the table with hypothesis' minimal example
        failure = f"{type(err).__name__}: {str(err)[:300]}"
    tried = sum(outcomes.values()) + bool(failure)
    figures = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
    return Row(
        "fuzz",
        target.what,
        tried,
        sum(outcomes.values()),
        failure or f"{figures}; slowest {slowest * 1000:.1f} ms, no exception escaped",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="inputs per parser (default 5000)")
    parser.add_argument(
        "--api-examples", type=int, default=30, help="requests per API operation (default 30)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = [fuzz_target(t, args.examples) for t in TARGETS]
    with tempfile.TemporaryDirectory(prefix="homemeter-fuzz-") as tmp:
        data = Path(tmp) / "data"
        write_config(data)
        svc = Homemeter(data).start()
        try:
            rows += modbus_noise(svc, connections=max(50, args.examples // 20))
        finally:
            svc.close()
        rows += run_schemathesis(Path(tmp) / "api", args.api_examples)
    title = (
        f"make fuzz: {args.examples} inputs per parser, {args.api_examples} requests per API operation, "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return 0 if print_table(rows, title) else 1


if __name__ == "__main__":
    sys.exit(main())
