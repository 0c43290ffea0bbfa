"""Per-CPU load of the host, sampled once a second: the device's core0/core1 load history.

Computed from `psutil.cpu_times(percpu=True)` deltas rather than `psutil.cpu_percent()`, whose
module-wide "since last call" state any other caller in the process would disturb.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import psutil

HISTORY_SECONDS = 3600  # the device keeps an hour; older samples drop off
CORES = 2  # the device has two cores; the first two CPUs stand in for them


@dataclass(frozen=True, slots=True)
class CpuSample:
    epoch: int  # Unix seconds
    percent: tuple[int, ...]  # per CPU, 0-100, at most CORES entries


def _busy_total(times: Any) -> tuple[float, float]:
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


class CpuHistory:
    """A ring of one sample per second; `run()` fills it until cancelled."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: deque[CpuSample] = deque(maxlen=int(HISTORY_SECONDS / interval))
        self._last = self._read()

    @staticmethod
    def _read() -> list[tuple[float, float]]:
        return [_busy_total(t) for t in psutil.cpu_times(percpu=True)[:CORES]]

    def sample(self) -> CpuSample:
        """Load of each CPU since the previous sample; appended to the history."""
        now = self._read()
        percent = []
        for (busy0, total0), (busy1, total1) in zip(self._last, now, strict=True):
            span = total1 - total0
            percent.append(round(100 * (busy1 - busy0) / span) if span > 0 else 0)
        self._last = now
        sample = CpuSample(int(time.time()), tuple(max(0, min(100, p)) for p in percent))
        self.samples.append(sample)
        return sample

    def last(self, seconds: int) -> list[CpuSample]:
        """Samples of the last `seconds`, oldest first."""
        since = time.time() - seconds
        return [s for s in self.samples if s.epoch > since]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.sample()
