"""The device's time formats (timestamps, durations), shared by logs, the API, backups and publishers."""

from __future__ import annotations

import time


def iso_time(epoch: float) -> str:
    """The device's timestamp format (ISO 8601 UTC with milliseconds): logs, API, backups."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def duration(seconds: float) -> str:
    """The device's duration words in status texts: ms, s, min, h or d, whole units (80 s -> `1 min`)."""
    ms = int(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms // size} {unit}"
    return f"{ms} ms"
