"""The seam between the meter and whatever produces measurements (simulator or ADE7953).

A source answers "what did channel k measure over the window that just ended"; everything the device
does to a raw measurement (sign rules, clamps, no-load zeroing, energy) happens in the meter, so both
sources go through the same pipeline.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from homemeter.config.channel import ChannelConfig


class Measurement(NamedTuple):
    """One channel over one line-cycle window, as a correctly oriented CT would see it.

    A NamedTuple, not a frozen dataclass: built ~650,000 times per simulated day, and a frozen
    dataclass __init__ costs 3.7x as much (0.92 vs 0.25 us here), ~0.4 s of a 5 s day.

    Powers are signed in the channel's nominal direction (consumption for a load, import for the grid,
    generation for PV, discharge for a battery); `reverse` is applied later by the meter.
    """

    voltage: float  # V RMS
    current: float  # A RMS, >= 0
    active_power: float  # W, signed
    reactive_power: float  # VAr, signed (+ inductive)
    apparent_power: float  # VA, >= 0


class SampleSource(Protocol):
    """What the sampler needs from a measurement source (simulator, ADE7953, a remote meter)."""

    #: True when `measure` does blocking I/O (SPI, network): the meter then samples off the event loop.
    blocking: bool

    def factory_channels(self, count: int) -> tuple[ChannelConfig, ...]:
        """The channel table of a first start (and of a factory reset) for `count` channels."""

    def select(self, channel: int) -> None:
        """The multiplexed channel the next `measure` of a channel other than 0 will read.

        Called before that window starts, so hardware can switch its multiplexer and settle.
        """

    def advance(self, at: float) -> None:
        """Move the source's own state (battery charge, appliance cycles) to time `at` (epoch s)."""

    def measure(self, channel: int, at: float) -> Measurement:
        """The window ending at `at` for `channel`; raises SourceUnavailable on a failed read."""

    def grid_frequency(self, at: float) -> float:
        """Line frequency in Hz at time `at`."""
