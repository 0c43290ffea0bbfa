"""Short version of `make soak`'s load: 10 s, 20 HTTP + 10 Modbus clients, MQTT every second."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.load import LoadPlan, run_load
from tests.reliability.report import assert_held

SHORT = LoadPlan(
    duration=10, http_clients=20, modbus_clients=10, http_period=0.5, modbus_period=0.5, warmup=2
)


@pytest.mark.serial  # measures timing: runs alone (tests/conftest.py)
def test_load_holds_cadence_memory_and_descriptors(tmp_path: Path) -> None:
    assert_held(run_load(tmp_path, SHORT))
