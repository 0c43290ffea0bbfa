"""The hard seam under the driver: an SPI bus, a few GPIO lines and a clock.

Linux implements them with spidev and libgpiod (`linux.py`), the emulator with a register-level
model of the chip and the multiplexer (`emulator.py`); the driver cannot tell them apart, so
everything it does on hardware is what the tests run. Every wait goes through `Clock` or
`ControlLines.wait_interrupt` with a timeout: nothing here may block without a bound.
"""

from __future__ import annotations

from typing import Protocol

from homemeter.errors import SourceUnavailable


class SpiBus(Protocol):
    def transfer(self, frame: bytes) -> bytes:
        """One full-duplex chip-select frame; the received bytes, as many as sent. OSError on failure."""
        ...

    def close(self) -> None: ...


class ControlLines(Protocol):
    """The GPIO side: the chip's RESET input and IRQ output, and the multiplexer's select lines."""

    #: False when no IRQ line is wired: the driver then polls the status register instead.
    has_interrupt: bool

    def select_input(self, number: int) -> None:
        """Drive S0..S3 to the multiplexer input `number` (0..15)."""
        ...

    def set_reset(self, asserted: bool) -> None:
        """Hold the chip in reset (True) or let it run (False)."""
        ...

    def wait_interrupt(self, timeout: float) -> bool:
        """Wait at most `timeout` s for IRQ to be asserted (low); True if it is."""
        ...

    def close(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class Ade7953Error(SourceUnavailable):
    """The chip could not be read: the meter counts the reading as failed and goes on."""


class BusError(Ade7953Error):
    """The SPI bus or the chip does not answer (stuck bus, unpowered chip, no device)."""


class Glitch(Ade7953Error):
    """A reading that cannot be trusted (failed verification, RMS witness, settling): discarded."""
