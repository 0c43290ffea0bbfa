"""Problems the service detected, kept until a user has seen them: `GET /system/issues`.

The lifecycle is the device's: raise -> active_unacked; the condition clears -> cleared_unacked
(listed until acked); ack of an active issue -> active_acked (listed until it clears, then dropped);
ack of a cleared one -> dropped; a listed issue raised again becomes active, keeping its ack state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

log = logging.getLogger(__name__)

MAX_ISSUES = 32  # the device's limit of listed instances
GLOBAL = 255  # the device's channel value for issues that belong to no channel


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class State(StrEnum):
    ACTIVE_UNACKED = "active_unacked"
    ACTIVE_ACKED = "active_acked"
    CLEARED_UNACKED = "cleared_unacked"


#: Codes of the service itself; each component declares its own (`Component.issue_codes`).
CORE_ISSUES = MappingProxyType(
    {
        "credentials_mode_fixed": Severity.WARNING,  # the file was readable by others
    }
)


@dataclass(slots=True)
class Issue:
    code: str
    channel: int  # GLOBAL when the issue belongs to no channel
    state: State
    severity: Severity
    firstSeenUnix: int
    lastChangeUnix: int
    occurrences: int
    message: str

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"code": self.code}
        if self.channel != GLOBAL:
            doc["channel"] = self.channel
        doc.update(
            state=self.state.value,
            severity=self.severity.value,
            firstSeenUnix=self.firstSeenUnix,
            lastChangeUnix=self.lastChangeUnix,
            occurrences=self.occurrences,
            message=self.message,
        )
        return doc


class IssueRegistry:
    """Issue instances keyed by (code, channel), in the order they were first seen."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._issues: dict[tuple[str, int], Issue] = {}
        self._severity: dict[str, Severity] = dict(CORE_ISSUES)

    def declare(self, codes: Mapping[str, Severity]) -> None:
        """Make codes known with their fixed severity (a component's, at start)."""
        for code, severity in codes.items():
            if self._severity.setdefault(code, severity) is not severity:
                raise ValueError(f"issue code {code!r} declared twice with different severities")

    def raise_issue(self, code: str, message: str, channel: int = GLOBAL) -> None:
        """The condition is present; raising an active issue again only updates its message."""
        now = int(self._clock())
        issue = self._issues.get((code, channel))
        if issue is None:
            severity = self._severity.get(code)
            if severity is None:
                raise ValueError(f"issue code {code!r} was not declared (Component.issue_codes)")
            if len(self._issues) >= MAX_ISSUES:
                log.warning("issue list full, not listing code=%s", code)
                return
            self._issues[(code, channel)] = Issue(
                code, channel, State.ACTIVE_UNACKED, severity, now, now, 1, message
            )
            return
        issue.message = message
        if issue.state is State.CLEARED_UNACKED:
            issue.state, issue.lastChangeUnix = State.ACTIVE_UNACKED, now
            issue.occurrences += 1

    def clear(self, code: str, channel: int = GLOBAL) -> None:
        """The condition is gone: an acked issue is dropped, an unacked one stays until acked."""
        issue = self._issues.get((code, channel))
        if issue is None or issue.state is State.CLEARED_UNACKED:
            return
        if issue.state is State.ACTIVE_ACKED:
            del self._issues[(code, channel)]
            return
        issue.state, issue.lastChangeUnix = State.CLEARED_UNACKED, int(self._clock())

    def event(self, code: str, message: str, channel: int = GLOBAL) -> None:
        """Something that happened and is over (e.g. a recovery at start): listed until acked."""
        self.raise_issue(code, message, channel)
        self.clear(code, channel)

    def ack(self, code: str, channel: int = GLOBAL) -> bool:
        """Acknowledge one instance; False if there is no unacked instance of it."""
        issue = self._issues.get((code, channel))
        if issue is None or issue.state is State.ACTIVE_ACKED:
            return False
        self._ack(issue)
        return True

    def ack_all(self) -> int:
        """Acknowledge every unacked instance; the number acknowledged."""
        unacked = [i for i in self._issues.values() if i.state is not State.ACTIVE_ACKED]
        for issue in unacked:
            self._ack(issue)
        return len(unacked)

    def _ack(self, issue: Issue) -> None:
        if issue.state is State.CLEARED_UNACKED:
            del self._issues[(issue.code, issue.channel)]
        else:
            issue.state, issue.lastChangeUnix = State.ACTIVE_ACKED, int(self._clock())

    def issues(self) -> list[Issue]:
        return list(self._issues.values())
