"""The ADE7953 source: the chip on real hardware (spidev + libgpiod) or on the register-level emulator.

`hardware_source` opens the board described by the run options; `emulated_source` builds the same
driver over an emulated board that measures the household simulator.
"""

from __future__ import annotations

from homemeter.config.ade7953 import Ade7953Wiring, Board
from homemeter.meter.sources.ade7953.chip import Chip
from homemeter.meter.sources.ade7953.conversion import BOARDS
from homemeter.meter.sources.ade7953.emulator import EmulatedBoard, Faults, Wiring
from homemeter.meter.sources.ade7953.source import Ade7953Source, check_channels
from homemeter.meter.sources.house import default_channel_configs
from homemeter.meter.sources.simulator import HouseholdSimulator

__all__ = ["Ade7953Source", "EmulatedBoard", "Faults", "emulated_source", "hardware_source"]


def hardware_source(wiring: Ade7953Wiring, channel_count: int) -> Ade7953Source:
    """The real board; `SourceUnavailable` says what to fix when the device or lines cannot be opened."""
    from homemeter.meter.sources.ade7953.linux import GpiodLines, SpidevBus, SystemClock

    board = BOARDS[wiring.board]
    check_channels(board, channel_count)  # before the device is opened
    bus = SpidevBus(wiring.spi_device, wiring.spi_speed_hz)
    try:
        lines = GpiodLines(wiring)
    except BaseException:
        bus.close()
        raise
    return Ade7953Source(Chip(bus, lines, SystemClock(), wiring.spi_device), board, channel_count)


def emulated_source(
    seed: int = 0,
    channel_count: int = 17,
    board: Board = Board.V6_0,
    *,
    interrupt_line: bool = True,
    faults: Faults | None = None,
) -> tuple[Ade7953Source, EmulatedBoard]:
    """The driver over an emulated board wired to the simulated house (its CTs, its channel table)."""
    profile = BOARDS[board]
    check_channels(profile, channel_count)
    house = HouseholdSimulator(seed=seed, channel_count=channel_count)
    configs = default_channel_configs(channel_count)
    wiring = Wiring(
        channel_of_input={profile.mux_inputs[k - 1]: k for k in range(1, channel_count)},
        cts={c.index: c.ctSpecification for c in configs},
    )
    emulator = EmulatedBoard(house, profile, wiring, interrupt_line=interrupt_line, faults=faults)
    chip = Chip(emulator, emulator, emulator, "the emulated board")
    source = Ade7953Source(
        chip,
        profile,
        channel_count,
        factory=lambda n: tuple(default_channel_configs(n)),
        sync=emulator.run_until,
    )
    return source, emulator
