"""The reset reason `crash/info` reports: how the previous run of the service ended."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from homemeter.store import run_state
from homemeter.store.run_state import ResetReason, record_clean_stop, record_start


@pytest.fixture(autouse=True)
def host_booted_long_ago(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "boot_time", lambda: 1000.0)


def test_first_start_is_power_on(tmp_path: Path) -> None:
    info = record_start(tmp_path, now=5000.0)
    assert (info.reason, info.resetCount, info.crashCount) == (ResetReason.POWER_ON, 1, 0)


def test_clean_stop_then_start_is_software(tmp_path: Path) -> None:
    record_start(tmp_path, now=5000.0)
    record_clean_stop(tmp_path)
    info = record_start(tmp_path, now=9000.0)
    assert (info.reason, info.resetCount, info.crashCount) == (ResetReason.SOFTWARE, 2, 0)
    assert info.reason.text == "Software"


def test_start_without_clean_stop_is_a_crash_counted_consecutively(tmp_path: Path) -> None:
    record_start(tmp_path, now=5000.0)
    first = record_start(tmp_path, now=9000.0)  # killed: no record_clean_stop in between
    second = record_start(tmp_path, now=9010.0)
    assert (first.reason, first.crashCount, first.consecutiveCrashCount) == (ResetReason.PANIC, 1, 1)
    assert (second.crashCount, second.consecutiveCrashCount) == (2, 2)
    assert second.consecutiveResetCount == 1  # 10 s after the previous start: a rapid restart
    record_clean_stop(tmp_path)
    third = record_start(tmp_path, now=20000.0)
    assert (third.reason, third.crashCount, third.consecutiveCrashCount) == (ResetReason.SOFTWARE, 2, 0)


def test_host_reboot_since_last_run_is_power_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record_start(tmp_path, now=5000.0)
    monkeypatch.setattr(psutil, "boot_time", lambda: 6000.0)  # power cut, host rebooted
    info = record_start(tmp_path, now=7000.0)
    assert (info.reason, info.crashCount) == (ResetReason.POWER_ON, 0)


def test_damaged_state_file_restarts_counting(tmp_path: Path) -> None:
    (tmp_path / run_state.RUN_STATE_FILE).write_text("{not json")
    info = record_start(tmp_path, now=5000.0)
    assert (info.reason, info.resetCount) == (ResetReason.POWER_ON, 1)
