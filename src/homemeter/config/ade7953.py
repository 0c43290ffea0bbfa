"""How an ADE7953 board is wired to this host: run options (flags / HOMEMETER_* variables), not stored.

The SPI device, GPIO chip and line offsets are facts of one installation, like the data directory,
so they come from the command line (`homemeter run --help`) and are never part of `config.json`,
its backups or the REST API. The model validates them once, with the field named in the error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

LineOffset = Annotated[int, Field(ge=0, le=1023)]


class Board(StrEnum):
    """The EnergyMe-Home analog front end the chip sits on (divider and multiplexer wiring)."""

    V6_0 = "v6.0"  # 17 channels, 153 kOhm / 180 Ohm divider, mux inputs Y0..Y15 in order
    V6_1 = "v6.1"  # 16 channels: Y1 is not populated, so channel 2 is Y2, ..., 15 is Y15
    V5 = "v5"  # 17 channels, 990 kOhm / 1 kOhm divider


class Ade7953Wiring(BaseModel):
    """SPI and GPIO of one ADE7953 + 74HC4067 board (defaults: a Raspberry Pi, SPI0 CE0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    board: Board = Board.V6_0
    spi_device: str = Field("/dev/spidev0.0", min_length=1, description="/dev/spidevB.C")
    spi_speed_hz: int = Field(2_000_000, ge=100_000, le=5_000_000, description="the chip allows 5 MHz")
    gpio_chip: str = Field("/dev/gpiochip0", min_length=1)
    mux_lines: tuple[LineOffset, LineOffset, LineOffset, LineOffset] = Field(
        (17, 27, 22, 23), description="line offsets of the multiplexer's S0..S3"
    )
    reset_line: LineOffset = Field(24, description="the chip's RESET input (active low)")
    irq_line: LineOffset | None = Field(25, description="the chip's IRQ output; None: poll the status")

    @model_validator(mode="after")
    def _distinct_lines(self) -> Ade7953Wiring:
        used = [*self.mux_lines, self.reset_line]
        if self.irq_line is not None:
            used.append(self.irq_line)
        if len(set(used)) != len(used):
            raise ValueError(f"GPIO lines must be distinct, got mux {self.mux_lines}, reset "
                             f"{self.reset_line}, irq {self.irq_line}")  # fmt: skip
        return self
