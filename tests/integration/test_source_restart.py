"""homemeter restarted while its remote meters count on: their counters continue from the baselines
saved with the totals, so the restart credits exactly what the meters counted meanwhile.

- A clean stop and start on an EnergyMe device (a second homemeter on the simulator): the gap between
  the device's total and homemeter's is the same after the restart as before (within a poll).
- `kill -9` at a random moment of `homemeter run --source modbus` on the SDM630 stand-in, whose
  counters the test sets: after each restart homemeter's import is exactly the meter's count since
  homemeter first read it, never more; a meter reset while homemeter was stopped adds its new count.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homemeter.meter.sources.meter_model import load_model
from tests.integration.conftest import wait_until
from tests.integration.sdm_standin import MeterStandIn
from tests.integration.test_source_energyme import (
    NeverDown,
    apparent,
    homemeter_reading,
    issue,
    lag_returns_to,
    listed,
    settled_lag,
    start_device,
)
from tests.reliability.service import Homemeter, write_config

FIRST = 1_000_000.0  # Wh on the SDM630 when homemeter first reads it (exact in float32)


def test_a_restart_credits_what_the_device_counted_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = start_device(tmp_path / "device", monkeypatch)
    home = homemeter_reading(device.url, tmp_path / "home", monkeypatch)
    try:
        wait_until(lambda: listed(home) and apparent(home) > 1.0, 15, what="energy counted")
        before = settled_lag(device, home)
        t0, e0 = time.monotonic(), apparent(device)
        home.stop()
        stopped = apparent(home)  # the final snapshot, saved at the stop
        # The device counts on while homemeter is stopped.
        wait_until(lambda: time.monotonic() - t0 > 5.0, 10, what="5 s stopped")

        home = homemeter_reading(device.url, tmp_path / "home", monkeypatch)
        totals = NeverDown(home)
        totals.check()
        assert apparent(home) >= stopped
        totals.until(lambda: apparent(home) > stopped + 1.0, 10, "the time stopped credited")
        rate = (apparent(device) - e0) / (time.monotonic() - t0)
        assert rate * 5.0 > 3.0  # the stop alone is worth far more than the tolerance
        lag_returns_to(device, home, before, rate)  # nothing lost, nothing counted twice
        assert issue(home, "source_counter_jump") is None

    finally:
        home.stop()
        device.stop()


@pytest.fixture
def sdm630() -> Iterator[MeterStandIn]:
    meter = MeterStandIn(load_model("sdm630"))
    for channel in range(3):
        meter.set(channel, voltage=230.0, current=1.0, activePower=200.0, apparentPower=230.0)
    meter.set(0, activeEnergyImported=FIRST)
    with meter.running():
        yield meter


def imported(home: Homemeter) -> float | None:
    shown = {c["index"]: c for c in home.get("/api/v1/ade7953/meter-values").json()}
    return shown[0]["data"]["activeEnergyImported"] if 0 in shown else None


def test_kill_9_at_any_moment_neither_loses_nor_doubles(sdm630: MeterStandIn, tmp_path: Path) -> None:
    rng = random.Random(18)
    data = tmp_path / "home"
    write_config(data, channels=3, energySaveInterval=1.0)
    extra = ("--channels", "3", "--source", "modbus", "--source-url", sdm630.url, "--meter-model", "sdm630")
    count = FIRST
    expected = 0.0  # what homemeter must show: the meter's count since homemeter first read it

    def shows(value: float) -> None:
        seen: list[float] = []

        def reached() -> bool:
            got = imported(home)
            if got is not None:
                seen.append(got)
            return got is not None and abs(got - value) < 0.05

        wait_until(reached, 15, what=f"import {value}")
        assert max(seen) < value + 0.05, f"counted twice: {seen}"

    for ending in ("kill -9", "clean stop"):
        home = Homemeter(data, extra=extra).start()
        try:
            shows(expected)  # after a kill: exactly the count so far, never more
            count += 3.0
            sdm630.set(0, activeEnergyImported=count)
            expected += 3.0
            shows(expected)
            time.sleep(rng.uniform(0.0, 1.2))  # a random moment relative to the 1 s saves
            count += 2.0
            sdm630.set(0, activeEnergyImported=count)
            expected += 2.0
            if ending == "kill -9":
                time.sleep(rng.uniform(0.0, 0.8))  # polled or not yet, taken or not yet, saved or not
            else:
                shows(expected)  # read before the stop: the reset below must not take it away
        finally:
            if ending == "kill -9":
                home.kill()
            else:
                home.close()
        if ending == "kill -9":  # the meter counts on while homemeter is down
            count += 7.0
            sdm630.set(0, activeEnergyImported=count)
            expected += 7.0

    # The meter is reset to zero while homemeter is down and counts 4 Wh: those 4 Wh are added.
    sdm630.set(0, activeEnergyImported=4.0)
    expected += 4.0
    home = Homemeter(data, extra=extra).start()
    try:
        shows(expected)

        def jumps() -> list[dict[str, Any]]:
            issues = home.get("/api/v1/system/issues").json()["issues"]
            return [i for i in issues if i["code"] == "source_counter_jump"]

        found = wait_until(jumps, 5, what="the counter jump listed")
        assert f"{count:.1f} -> 4.0" in found[0]["message"]
    finally:
        home.close()
