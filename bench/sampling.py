"""Sampling cost: CPU share at device cadence, and one simulated day at full speed.

Prints the figures next to their goals (under 2 % of one core; a day in under 5 s) and, as a same-run
reference, the cost of the bare asyncio timer loop at the same cadence without any sampling work.
The ADE7953 driver is measured on the emulated board: the share of the whole (driver + emulated
chip, sampling off the event loop as on hardware), and the driver's own share, which is that minus
the time spent inside the emulator (frames answered, windows computed), timed at full speed.
Usage: python bench/sampling.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.sources.ade7953 import EmulatedBoard, emulated_source
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs

CHANNELS = 17
DEVICE_WINDOWS_PER_S = 5.0  # 200 ms line-cycle windows


def new_meter(speed: float = 1.0) -> Meter:
    return Meter(
        HouseholdSimulator(seed=1, channel_count=CHANNELS),
        default_channel_configs(CHANNELS),
        {},
        clock=MeterClock(speed, start=1_767_225_600.0 if speed != 1.0 else None),
    )


def emulator_meter(speed: float = 1.0) -> tuple[Meter, EmulatedBoard]:
    source, board = emulated_source(seed=1, channel_count=CHANNELS)
    start = 1_767_225_600.0 if speed != 1.0 else None
    return Meter(source, default_channel_configs(CHANNELS), {}, clock=MeterClock(speed, start=start)), board


def driver_split(seconds: float) -> tuple[float, float, int]:
    """(s in the driver, s in the emulator, windows) over `seconds` simulated at full speed."""
    meter, board = emulator_meter(speed=1000.0)
    spent = [0.0]

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent[0] += time.perf_counter() - t0

        return wrapper

    board.transfer = timed(board.transfer)  # type: ignore[method-assign]
    board._end_window = timed(board._end_window)  # type: ignore[method-assign]
    t0 = time.perf_counter()
    meter.simulate(seconds)
    total = time.perf_counter() - t0
    return total - spent[0], spent[0], round(seconds * DEVICE_WINDOWS_PER_S)


async def _cpu_share(coro_factory: object, seconds: float) -> float:
    task = asyncio.create_task(coro_factory())  # type: ignore[operator]
    await asyncio.sleep(0.5)  # warm up
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return cpu / wall


async def _bare_timer() -> None:
    """The same 200 ms cadence with no work: what the event loop alone costs."""
    while True:
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="real seconds per CPU measurement")
    args = parser.parse_args()

    meter = new_meter()
    share = asyncio.run(_cpu_share(meter.run, args.seconds))
    bare = asyncio.run(_cpu_share(_bare_timer, args.seconds))
    emulated = asyncio.run(_cpu_share(emulator_meter()[0].run, args.seconds))
    driver_s, emulator_s, chip_windows = driver_split(600.0)
    driver_us, emulator_us = driver_s / chip_windows * 1e6, emulator_s / chip_windows * 1e6
    driver_share = driver_us * 1e-6 * DEVICE_WINDOWS_PER_S
    whole_share = (driver_us + emulator_us) * 1e-6 * DEVICE_WINDOWS_PER_S
    day_meter = new_meter(speed=1000.0)
    t0 = time.perf_counter()
    day_meter.simulate(86_400.0)
    day = time.perf_counter() - t0
    windows = 86_400.0 / 0.2
    print("| measure | homemeter | same-run reference | goal |")
    print("|---|---|---|---|")
    print(
        f"| CPU share, {CHANNELS} channels at device cadence (200 ms) | {share * 100:.2f} % of a core "
        f"| bare 200 ms timer loop: {bare * 100:.2f} % | < 2 % |"
    )
    print(
        f"| CPU share, ADE7953 driver + emulated chip at device cadence | {emulated * 100:.2f} % of a core "
        f"| simulator source above: {share * 100:.2f} % | < 2 % |"
    )
    print(
        f"| CPU share, the ADE7953 driver alone (per window: {driver_us:,.0f} us driver, "
        f"{emulator_us:,.0f} us emulator) | {driver_share * 100:.2f} % of a core "
        f"| driver + emulator, same timing: {whole_share * 100:.2f} % | < 2 % |"
    )
    print(f"| one simulated day at full speed | {day:.2f} s ({windows / day:,.0f} windows/s) | — | < 5 s |")
    print(f"| readings in that day | {day_meter.readings:,} ({day_meter.failures} discarded) | — | — |")


if __name__ == "__main__":
    main()
