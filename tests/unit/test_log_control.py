"""Live log levels with the device's names, applied to the console and the kept lines."""

from __future__ import annotations

import io
import logging

from homemeter.logs.control import LogControl, device_level
from homemeter.logs.ring import ConsoleHandler, RingHandler


def test_device_level_names() -> None:
    assert [device_level(n) for n in (1, 5, 10, 20, 30, 40, 50, 60)] == [
        "VERBOSE", "VERBOSE", "DEBUG", "INFO", "WARNING", "ERROR", "FATAL", "FATAL",
    ]  # fmt: skip


def test_print_and_save_levels_filter_their_own_outputs_and_are_restored() -> None:
    logger = logging.Logger("under-test", logging.INFO)
    out = io.StringIO()
    console = ConsoleHandler(out)
    logger.addHandler(console)
    ring = RingHandler()
    control = LogControl(ring, root=logger)
    assert (control.print_level, control.save_level) == ("INFO", "INFO")
    with control:
        assert ring in logger.handlers  # attached: GET /logs sees what is logged
        control.set_levels("ERROR", "DEBUG")
        logger.debug("detail")
        logger.error("broken")
        assert out.getvalue().splitlines() == ["broken"]
        assert [e.message for e in ring.entries] == ["detail", "broken"]
    assert ring not in logger.handlers
    assert (logger.level, console.level, ring.level) == (logging.INFO, logging.NOTSET, logging.NOTSET)
