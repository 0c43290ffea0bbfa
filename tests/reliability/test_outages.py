"""Short version of `make soak`'s outages: the broker and influxd killed and restarted twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.influxd import SETUP_HINT, available
from tests.reliability.outages import OutagePlan, run_outages
from tests.reliability.report import assert_held


def test_broker_and_influxd_killed_and_restarted(tmp_path: Path) -> None:
    if not available():
        pytest.fail(SETUP_HINT)
    assert_held(run_outages(tmp_path, OutagePlan(cycles=2, down=5.0, settle=1.0)))
