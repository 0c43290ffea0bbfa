"""The issue lifecycle of reference 3.1: what stays listed, in which state, until when."""

from __future__ import annotations

import pytest

from homemeter.system.issues import MAX_ISSUES, IssueRegistry, Severity, State

CODE = "energy_save_failing"


def registry(**kwargs: object) -> IssueRegistry:
    reg = IssueRegistry(**kwargs)  # type: ignore[arg-type]
    reg.declare({CODE: Severity.ERROR, "energy_db_recovered": Severity.WARNING})
    return reg


def test_an_undeclared_code_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="'no_such_code' was not declared"):
        IssueRegistry().raise_issue("no_such_code", "x")


def test_a_code_declared_with_two_severities_is_refused() -> None:
    reg = registry()
    reg.declare({CODE: Severity.ERROR})  # the same declaration again is fine
    with pytest.raises(ValueError, match="different severities"):
        reg.declare({CODE: Severity.WARNING})


def states(registry: IssueRegistry) -> list[tuple[str, int, State]]:
    return [(i.code, i.channel, i.state) for i in registry.issues()]


def test_an_unacked_issue_stays_listed_after_it_clears_until_acked() -> None:
    reg = registry(clock=lambda: 1000.0)
    reg.raise_issue(CODE, "disk full")
    reg.raise_issue(CODE, "disk still full")  # the same condition continuing: one occurrence
    [issue] = reg.issues()
    assert (issue.state, issue.occurrences, issue.message) == (State.ACTIVE_UNACKED, 1, "disk still full")
    reg.clear(CODE)
    assert states(reg) == [(CODE, 255, State.CLEARED_UNACKED)]
    reg.raise_issue(CODE, "disk full again")
    assert reg.issues()[0].occurrences == 2 and reg.issues()[0].state is State.ACTIVE_UNACKED
    reg.clear(CODE)
    assert reg.ack(CODE) and reg.issues() == []
    assert not reg.ack(CODE)  # nothing left to acknowledge


def test_an_acked_active_issue_is_dropped_when_it_clears() -> None:
    reg = registry()
    reg.raise_issue(CODE, "disk full")
    assert reg.ack(CODE)
    assert states(reg) == [(CODE, 255, State.ACTIVE_ACKED)]
    assert not reg.ack(CODE)  # already acknowledged
    assert reg.ack_all() == 0
    reg.clear(CODE)
    assert reg.issues() == []


def test_channel_scope_and_the_limit() -> None:
    reg = registry()
    reg.event("energy_db_recovered", "restored")
    for channel in range(MAX_ISSUES + 5):
        reg.raise_issue(CODE, "x", channel)
    assert len(reg.issues()) == MAX_ISSUES
    assert not reg.ack(CODE)  # the global instance of this code does not exist
    assert reg.issues()[1].to_json()["channel"] == 0
    assert "channel" not in reg.issues()[0].to_json()
    assert reg.ack_all() == MAX_ISSUES
    assert len(reg.issues()) == MAX_ISSUES - 1  # the cleared event is gone, active ones acked
