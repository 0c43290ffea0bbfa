"""The real bus: spidev for SPI and libgpiod v2 (the `gpiod` package) for the lines.

Both are optional dependencies (`pip install 'homemeter[pi]'`), imported only when a board is
opened, so the rest of homemeter installs and runs anywhere. Opening errors become one
`SourceUnavailable` line that says what to fix.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from homemeter.config.ade7953 import Ade7953Wiring
from homemeter.errors import SourceUnavailable

PI_EXTRA = "install the Raspberry Pi extra: pip install 'homemeter[pi]'"


class SpidevBus:
    """/dev/spidevB.C in mode 0, MSB first; one `xfer2` per frame keeps chip select low throughout."""

    def __init__(self, device: str, speed_hz: int) -> None:
        try:
            import spidev
        except ImportError as err:
            raise SourceUnavailable(f"the spidev package is missing: {PI_EXTRA}") from err
        bus, dev = _spi_numbers(device)
        self._spi: Any = spidev.SpiDev()
        try:
            self._spi.open(bus, dev)
        except OSError as err:
            raise SourceUnavailable(
                f"cannot open SPI device {device} ({err.strerror}): enable SPI (raspi-config, "
                "dtparam=spi=on) and give the service user access (group spi), or set --spi-device"
            ) from err
        self._spi.mode = 0
        self._spi.lsbfirst = False
        self._spi.max_speed_hz = speed_hz

    def transfer(self, frame: bytes) -> bytes:
        return bytes(self._spi.xfer2(list(frame)))

    def close(self) -> None:
        self._spi.close()


def _spi_numbers(device: str) -> tuple[int, int]:
    """(bus, chip select) of a /dev/spidevB.C path."""
    name = device.rsplit("/", 1)[-1]
    bus, _, cs = name.removeprefix("spidev").partition(".")
    if not name.startswith("spidev") or not bus.isdigit() or not cs.isdigit():
        raise SourceUnavailable(f"spi_device: expected /dev/spidevB.C, got {device!r}")
    return int(bus), int(cs)


class GpiodLines:
    """The multiplexer select lines, RESET (active low) and IRQ (active low, falling edges)."""

    def __init__(self, wiring: Ade7953Wiring) -> None:
        try:
            import gpiod
            from gpiod.line import Bias, Direction, Edge, Value
        except ImportError as err:
            raise SourceUnavailable(f"the gpiod package (libgpiod v2) is missing: {PI_EXTRA}") from err
        self._active, self._inactive = Value.ACTIVE, Value.INACTIVE
        self._mux = wiring.mux_lines
        self._reset = wiring.reset_line
        self._irq = wiring.irq_line
        config: dict[Any, Any] = {
            self._mux: gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE),
            # active_low: ACTIVE drives the pin low, which holds the chip in reset.
            self._reset: gpiod.LineSettings(
                direction=Direction.OUTPUT, active_low=True, output_value=Value.INACTIVE
            ),
        }
        if self._irq is not None:
            config[self._irq] = gpiod.LineSettings(
                direction=Direction.INPUT,
                edge_detection=Edge.RISING,  # logical rising = physical falling with active_low
                active_low=True,
                bias=Bias.PULL_UP,
            )
        try:
            self._request: Any = gpiod.request_lines(wiring.gpio_chip, consumer="homemeter", config=config)
        except OSError as err:
            raise SourceUnavailable(
                f"cannot request GPIO lines {sorted(_offsets(wiring))} on {wiring.gpio_chip} "
                f"({err.strerror}): check the line numbers and that no other program holds them"
            ) from err
        self.has_interrupt = self._irq is not None

    def select_input(self, number: int) -> None:
        on, off = self._active, self._inactive
        self._request.set_values(
            {line: on if number >> bit & 1 else off for bit, line in enumerate(self._mux)}
        )

    def set_reset(self, asserted: bool) -> None:
        self._request.set_value(self._reset, self._active if asserted else self._inactive)

    def wait_interrupt(self, timeout: float) -> bool:
        if self._irq is None:
            time.sleep(max(timeout, 0.0))
            return False
        # IRQ is a level: already low means pending, whether or not we saw its edge.
        if self._request.get_value(self._irq) == self._active:
            return True
        if self._request.wait_edge_events(datetime.timedelta(seconds=max(timeout, 0.0))):
            self._request.read_edge_events()
        return bool(self._request.get_value(self._irq) == self._active)

    def close(self) -> None:
        self._request.release()


def _offsets(wiring: Ade7953Wiring) -> list[int]:
    lines = [*wiring.mux_lines, wiring.reset_line]
    return lines + ([wiring.irq_line] if wiring.irq_line is not None else [])


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))
