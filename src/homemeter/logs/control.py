"""What the API changes in logging, live: levels by the device's names, and UDP syslog forwarding.

The device has two levels: `print` (its serial console) and `save` (its log file). Here `print` is
the console handler's level and `save` the level of the in-memory ring that `GET /logs` serves and
of the syslog forwarder; the root logger lets through the lower of the two. Levels are not stored:
`--log-level` sets both at start, as the device's stored levels would.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
from types import MappingProxyType, TracebackType
from typing import Literal

from homemeter.config.app import AppConfig
from homemeter.config.udp_log import DISABLED, UdpLogConfig
from homemeter.logs.ring import ConsoleHandler, RingHandler
from homemeter.timestamps import iso_time

LevelName = Literal["VERBOSE", "DEBUG", "INFO", "WARNING", "ERROR", "FATAL"]
# VERBOSE sits below DEBUG (nothing in homemeter logs that fine); FATAL is Python's CRITICAL.
LEVELS = MappingProxyType({"VERBOSE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "FATAL": 50})


def device_level(levelno: int) -> LevelName:
    """The device's name for a Python level: the highest device level at or below it."""
    name: LevelName = "VERBOSE"
    for candidate, value in LEVELS.items():
        if value <= levelno:
            name = candidate  # type: ignore[assignment]  # keys are exactly LevelName
    return name


class _SyslogFormatter(logging.Formatter):
    """RFC 5424 after the `<PRI>` the handler adds: version, time, host, app, pid, -, -, text."""

    def __init__(self) -> None:
        super().__init__()
        self._head = f"{socket.gethostname() or '-'} homemeter {os.getpid()} - -"

    def format(self, record: logging.LogRecord) -> str:
        return f"1 {iso_time(record.created)} {self._head} {record.name}: {record.getMessage()}"


class _SyslogHandler(logging.handlers.SysLogHandler):
    """Counts datagrams that could not be sent instead of printing a traceback for each."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address=address, socktype=socket.SOCK_DGRAM)
        self.setFormatter(_SyslogFormatter())
        self.append_nul = False  # a NUL ends RFC 3164 lines of old daemons; 5424 has none
        self.dropped = 0

    def handleError(self, record: logging.LogRecord) -> None:
        self.dropped += 1


class LogControl:
    """Owns what the API changes on the root logger; `with` restores the previous state at exit.

    Entering attaches the ring to the root logger if nobody did (an embedded service), so `GET /logs`
    always shows what the service logs.
    """

    def __init__(self, ring: RingHandler, root: logging.Logger | None = None) -> None:
        self._root = root or logging.getLogger()
        self._ring = ring
        start = device_level(self._root.getEffectiveLevel())
        self.print_level: LevelName = start
        self.save_level: LevelName = start
        self.udp = UdpLogConfig()
        self._syslog: _SyslogHandler | None = None
        self._dropped_before = 0  # by forwarders replaced since
        self._restore: list[tuple[logging.Handler | logging.Logger, int]] = []
        self._attached = False

    def __enter__(self) -> LogControl:
        consoles = [h for h in self._root.handlers if isinstance(h, ConsoleHandler)]
        self._restore = [(self._root, self._root.level), (self._ring, self._ring.level)]
        self._restore += [(h, h.level) for h in consoles]
        if self._ring not in self._root.handlers:
            self._root.addHandler(self._ring)
            self._attached = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._set_syslog(None)
        for target, level in self._restore:
            target.setLevel(level)
        if self._attached:
            self._root.removeHandler(self._ring)
            self._attached = False

    def set_levels(self, print_level: LevelName, save_level: LevelName) -> None:
        self.print_level, self.save_level = print_level, save_level
        printed, saved = LEVELS[print_level], LEVELS[save_level]
        for handler in self._root.handlers:
            if isinstance(handler, ConsoleHandler):
                handler.setLevel(printed)
        self._ring.setLevel(saved)
        if self._syslog is not None:
            self._syslog.setLevel(max(saved, logging.DEBUG))  # the device never sends VERBOSE
        self._root.setLevel(min(printed, saved))

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        """ConfigService applier: the UDP destination changes live."""
        if old.udpLog != new.udpLog:
            self.apply_udp(new.udpLog)

    def apply_udp(self, config: UdpLogConfig) -> None:
        """Start, move or stop forwarding; called at start and on every configuration change."""
        if config == self.udp:
            return
        self.udp = config
        enabled = config.destination != DISABLED
        self._set_syslog(_SyslogHandler((config.destination, config.port)) if enabled else None)

    def _set_syslog(self, handler: _SyslogHandler | None) -> None:
        old, self._syslog = self._syslog, handler
        if handler is not None:
            handler.setLevel(max(LEVELS[self.save_level], logging.DEBUG))
            self._root.addHandler(handler)
        if old is not None:
            self._root.removeHandler(old)
            self._dropped_before += old.dropped
            old.close()

    @property
    def dropped(self) -> int:
        """Log lines that could not be forwarded (the `log.dropped` statistic)."""
        return self._dropped_before + (self._syslog.dropped if self._syslog else 0)
