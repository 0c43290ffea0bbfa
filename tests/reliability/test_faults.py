"""Short versions of `make soak`'s faults: 3 kill -9 cycles (energy, history, InfluxDB queue), disk full,
read-only, corrupt config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import faults
from tests.reliability.report import Row, assert_held


def _run(rows: list[Row]) -> None:
    for row in rows:
        if row.skipped and row.area == faults.AREA and "root" in row.skipped:
            pytest.skip(f"{row.check}: {row.skipped}")
    assert_held(rows)


def test_kill9_loses_at_most_the_save_interval(tmp_path: Path) -> None:
    _run(faults.kill9_cycles(tmp_path, cycles=3))


def test_disk_full_is_reported_and_survived(tmp_path: Path) -> None:
    _run(faults.disk_full(tmp_path))


def test_read_only_data_dir_is_one_clear_error(tmp_path: Path) -> None:
    _run(faults.read_only(tmp_path))


def test_corrupt_configuration_is_one_clear_error_and_kept(tmp_path: Path) -> None:
    _run(faults.corrupt_config(tmp_path))
