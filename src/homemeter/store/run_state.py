"""How the previous run of the service ended: what `crash/info` reports as the reset reason.

A marker in `run-state.json` says "running" from start until a clean stop. Finding it still set at
the next start means the previous run died (crash, kill -9, OOM killer) unless the host rebooted in
between, which is a power cycle as far as the service can tell.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path

import psutil

from homemeter.store.atomic import write_atomic

log = logging.getLogger(__name__)

RUN_STATE_FILE = "run-state.json"
RAPID_RESTART_S = 60.0  # starts closer together than this count as consecutive resets


class ResetReason(IntEnum):
    """The device's reset reason codes (ESP-IDF numbering); the name is what the API shows."""

    UNKNOWN = 0
    POWER_ON = 1
    SOFTWARE = 3
    PANIC = 4

    @property
    def text(self) -> str:
        return {0: "Unknown", 1: "Power on", 3: "Software", 4: "Exception/panic"}[self.value]


@dataclass(frozen=True)
class StartInfo:
    """Why this run started and the counters since the data directory was created."""

    reason: ResetReason = ResetReason.UNKNOWN
    resetCount: int = 0
    crashCount: int = 0
    consecutiveCrashCount: int = 0
    consecutiveResetCount: int = 0


@dataclass
class _State:
    running: bool = False
    startedAt: float = 0.0
    stoppedAt: float = 0.0
    starts: int = 0
    crashes: int = 0
    consecutiveCrashes: int = 0
    consecutiveResets: int = 0


def _load(path: Path) -> _State | None:
    try:
        doc = json.loads(path.read_bytes())
        return _State(**{k: doc[k] for k in asdict(_State()) if k in doc})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as err:
        log.warning("run state %s unreadable, counters restart error=%s", path, err)
        return None


def _save(path: Path, state: _State) -> None:
    write_atomic(path, json.dumps(asdict(state)).encode() + b"\n")


def record_start(data_dir: Path, now: float | None = None) -> StartInfo:
    """Classify how the previous run ended, count this start and mark the service running."""
    now = time.time() if now is None else now
    path = data_dir / RUN_STATE_FILE
    prev = _load(path)
    state = prev or _State()
    if prev is None or psutil.boot_time() > max(prev.startedAt, prev.stoppedAt):
        reason = ResetReason.POWER_ON
    elif prev.running:
        reason = ResetReason.PANIC
    else:
        reason = ResetReason.SOFTWARE
    crashed = reason is ResetReason.PANIC
    state.crashes += crashed
    state.consecutiveCrashes = state.consecutiveCrashes + 1 if crashed else 0
    rapid = prev is not None and now - prev.startedAt < RAPID_RESTART_S
    state.consecutiveResets = state.consecutiveResets + 1 if rapid else 0
    state.starts += 1
    state.running, state.startedAt = True, now
    _save(path, state)
    return StartInfo(reason, state.starts, state.crashes, state.consecutiveCrashes, state.consecutiveResets)


def record_clean_stop(data_dir: Path) -> None:
    """Clear the running marker: the next start reports a software reset, not a crash."""
    path = data_dir / RUN_STATE_FILE
    state = _load(path) or _State()
    state.running, state.stoppedAt = False, time.time()
    _save(path, state)
