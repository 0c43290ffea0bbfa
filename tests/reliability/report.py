"""The table `make soak` and `make fuzz` print: what was tried and what held, as counts.

Every scenario returns `Row`s; a row holds when `held == tried` (or its own `ok` says otherwise, for
limits such as "RSS growth 1.2 % < 5 %"). The same rows are the assertions of the short versions in
`make test`, so the table and the tests cannot disagree.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import TextIO


@dataclass(frozen=True)
class Row:
    """One check: `tried` attempts, `held` of them as promised; `note` gives the figures behind it."""

    area: str
    check: str
    tried: int
    held: int
    note: str = ""
    ok: bool | None = None  # None: held == tried; set for limits that are not a count of attempts
    skipped: str = ""  # why the check could not run here (not root, component not built yet)

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        return self.held == self.tried if self.ok is None else self.ok

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skip"
        return "held" if self.passed else "FAILED"


def skipped(area: str, check: str, why: str) -> Row:
    return Row(area, check, 0, 0, skipped=why)


def render(rows: Sequence[Row], title: str) -> str:
    header = ("area", "check", "tried", "held", "result", "figures")
    table = [header] + [
        (r.area, r.check, str(r.tried), str(r.held), r.verdict, r.skipped or r.note) for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(5)]
    lines = [title, ""]
    for n, line in enumerate(table):
        cells = [line[i].ljust(widths[i]) if i < 2 else line[i].rjust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, line[4].ljust(widths[4]), line[5]]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    failed = sum(not r.passed for r in rows)
    lines += ["", f"{len(rows)} checks: {len(rows) - failed} held, {failed} failed"]
    return "\n".join(lines)


def print_table(rows: Sequence[Row], title: str, out: TextIO = sys.stdout) -> bool:
    print(render(rows, title), file=out, flush=True)
    return all(r.passed for r in rows)


def assert_held(rows: Iterable[Row]) -> None:
    """The short versions' assertion: every row held, with the table in the failure message."""
    rows = list(rows)
    assert all(r.passed for r in rows), "\n" + render(rows, "checks")


class Tally:
    """Counters shared by client threads."""

    def __init__(self) -> None:
        self._lock = Lock()
        self.counts: Counter[str] = Counter()
        self.maxima: dict[str, float] = {}

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def peak(self, key: str, value: float) -> None:
        with self._lock:
            if value > self.maxima.get(key, float("-inf")):
                self.maxima[key] = value

    def __getitem__(self, key: str) -> int:
        return self.counts[key]
