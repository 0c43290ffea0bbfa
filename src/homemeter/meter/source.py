"""The seam between the meter and whatever produces measurements (simulator, ADE7953, remote meters).

A source answers "what did channel k measure over the window that just ended"; everything the device
does to a raw measurement (sign rules, clamps, no-load zeroing, energy) happens in the meter, so both
sources go through the same pipeline.

A remote meter (an EnergyMe-Home device, a Modbus meter) is a meter of its own: it is polled on its
own cadence, its values are final and it counts energy itself. It is a `PolledSource`: the meter takes
its newest reading each window instead of sampling, and credits the energy the remote meter counted
(`RemoteReading.energy`) instead of integrating power, so its totals follow the remote counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple, Protocol, runtime_checkable

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.meter.snapshot import EnergyTotals


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


class RemoteReading(NamedTuple):
    """A remote meter's newest values of one channel and the energy it counted since the last take.

    Values are as the remote meter reports them (its own orientation); the meter applies only the
    channel's `reverse` and role rules. `energy` is never negative: counter resets and jumps are
    handled by the source (a remote meter's reset must never lower homemeter's totals).
    """

    measurement: Measurement
    power_factor: float | None  # the remote meter's PF (its sign is normalised); None: P/S
    energy: EnergyTotals  # Wh, VArh, VAh counted since the previous take, each >= 0


@runtime_checkable
class PolledSource(Protocol):
    """A source whose channels are other meters, polled on their own cadence (not per window)."""

    def take(self, channel: int) -> RemoteReading | None:
        """The newest reading since the last take (None: nothing new, keep the last values).

        Raises `SourceUnavailable` while the channel has no value (its meter unreachable, or not
        reporting that channel): the meter then shows no values for it, never zeros.
        """


@dataclass(frozen=True, slots=True)
class CounterBaseline:
    """The remote counters a homemeter channel's totals include: everything up to this reading.

    Saved in the same transaction as the totals, so after a restart (clean or `kill -9`) the first
    reading credits exactly what the remote meter counted since, never twice and never lost.
    """

    channel: int  # homemeter's channel
    source: str  # the remote meter's name
    url: str
    source_channel: int
    counters: tuple[float | None, ...]  # ENERGY_QUANTITIES order; None: the meter has no such counter
    read_at: float  # epoch s of that reading (the plausibility of the first step after a restart)


@runtime_checkable
class BaselineSource(Protocol):
    """A source whose totals follow remote counters (`RemoteSources`)."""

    def counter_baselines(self) -> tuple[CounterBaseline, ...]:
        """The baselines that match the meter's latest snapshot (call on the event loop)."""


# Optional capabilities of hardware sources (evcc style: one small protocol each; app.py and the
# ade7953 component check for them, the simulator has none).


@runtime_checkable
class ConfigurableSource(Protocol):
    def configure(self, config: AppConfig) -> None:
        """Take a new configuration (CT specifications, calibration, sample time) without blocking.

        Raises `ConfigRejected` for values the hardware cannot hold; the chip is written later,
        from the sampling thread.
        """


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How a hardware source is doing, for the component status and the issue list."""

    state: str  # "starting", "running", "no-line-cycles", "unreachable"
    ok: bool
    last_error: str | None = None
    counters: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    details: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@runtime_checkable
class MonitoredSource(Protocol):
    def health(self) -> SourceHealth:
        """The current health; cheap, callable from the event loop."""

    def close(self) -> None:
        """Release the device (may wait for a read in progress, at most a line-cycle window)."""


@runtime_checkable
class RegisterAccess(Protocol):
    """Raw register access for the device's register-tester endpoints (blocking: call off the loop)."""

    def read_register(self, address: int, bits: int, signed: bool) -> int: ...

    def write_register(self, address: int, bits: int, value: int) -> None: ...
