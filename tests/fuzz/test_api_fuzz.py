"""The destructive operations under schemathesis, each group on a throw-away service (the others are
in tests/integration/test_openapi.py; `make fuzz` runs all of them with more examples)."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz.api import run_schemathesis
from tests.reliability.report import assert_held


def test_destructive_operations_conform(tmp_path: Path) -> None:
    groups = ("restore and files", "energy and settings", "password")
    assert_held(run_schemathesis(tmp_path, examples=5, groups=groups))


def test_restart_and_factory_reset_conform(tmp_path: Path) -> None:
    assert_held(run_schemathesis(tmp_path, examples=2, groups=("restart and factory reset",)))
