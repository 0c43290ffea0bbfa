"""Short fuzzing in `make test` (`make fuzz` runs the same targets far longer, see run.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.targets import TARGETS, Target


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_no_exception_escapes(target: Target) -> None:
    outcomes: set[str] = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(target.strategy)
    def run(value: Any) -> None:
        outcomes.add(target.check(value))

    run()
    assert len(outcomes) >= 2, f"only {outcomes}: the inputs never reach the other outcome"
