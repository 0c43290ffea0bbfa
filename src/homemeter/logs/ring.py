"""Structured logging: key=value (logfmt) or JSON lines, plus an in-memory ring for the API.

Quiet by default: INFO says only what a user needs (listening addresses, credentials on first start,
recoveries); per-sample detail is DEBUG.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter, deque
from dataclasses import dataclass
from typing import TextIO

from homemeter.timestamps import iso_time

RING_SIZE = 2000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One kept log record, enough to render the device's log line format later."""

    created: float
    level: str
    logger: str
    function: str
    message: str


class RingHandler(logging.Handler):
    """Keeps the newest records in memory and counts records per level."""

    def __init__(self, size: int = RING_SIZE) -> None:
        super().__init__()
        self.entries: deque[LogEntry] = deque(maxlen=size)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1
        self.entries.append(
            LogEntry(record.created, record.levelname, record.name, record.funcName, record.getMessage())
        )

    def clear(self) -> None:
        self.entries.clear()


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' "=\\\n'):
        return value
    return json.dumps(value)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"time={iso_time(record.created)} level={record.levelname.lower()} "
            f"logger={record.name} msg={_quote(record.getMessage())}"
        )
        if record.exc_info:
            line += f" exc={_quote(self.formatException(record.exc_info))}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """The console output: its level is the `print` level of `PUT /logs/level`."""


def setup_logging(level: str = "INFO", fmt: str = "logfmt") -> RingHandler:
    """Configure the root logger once: console in the chosen format, and the ring."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = ConsoleHandler(sys.stderr)
    console.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    ring = RingHandler()
    root.addHandler(console)
    root.addHandler(ring)
    root.setLevel(level.upper())
    # Libraries chat at INFO (uvicorn access lines, per-request); keep them to warnings.
    for noisy in ("uvicorn", "uvicorn.access", "uvicorn.error", "httpx"):  # httpx: a line per request
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pymodbus warns of every failed connection to a remote meter; the sources component says it once.
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    return ring
