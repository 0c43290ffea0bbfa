"""The device's timestamp format, shared by logs, the API, backups and the publishers."""

from __future__ import annotations

import time


def iso_time(epoch: float) -> str:
    """The device's timestamp format (ISO 8601 UTC with milliseconds): logs, API, backups."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
