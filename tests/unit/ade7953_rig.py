"""The ADE7953 driver on an emulated board, in a meter: what the ADE7953 tests share."""

from __future__ import annotations

from dataclasses import dataclass, field

from homemeter.config.channel import ChannelConfig
from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.source import Measurement
from homemeter.meter.sources.ade7953 import Ade7953Source, EmulatedBoard, emulated_source
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs

NOON = 1_782_907_200.0  # 2026-07-01T12:00:00Z: PV, battery and appliances all busy
SEED = 7


@dataclass
class Recorder:
    """Every reading the driver delivered, next to what the household drew in that window."""

    source: Ade7953Source
    board: EmulatedBoard
    readings: list[tuple[int, Measurement, Measurement | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        inner = self.source.measure

        def measure(channel: int, at: float) -> Measurement:
            m = inner(channel, at)
            self.readings.append((channel, m, self.board.truth(channel)))
            return m

        self.source.measure = measure  # type: ignore[method-assign]


def rig(
    channels: int = 17, start: float = NOON, configs: list[ChannelConfig] | None = None, **kwargs: object
) -> tuple[Meter, Ade7953Source, EmulatedBoard]:
    source, board = emulated_source(SEED, channels, **kwargs)  # type: ignore[arg-type]
    table = configs if configs is not None else default_channel_configs(channels)
    meter = Meter(source, table, {}, clock=MeterClock(start=start))
    return meter, source, board


def reference_meter(channels: int = 17, start: float = NOON, sample_time_ms: int = 200) -> Meter:
    """The same house measured by the simulator directly: what the driver must reproduce."""
    return Meter(
        HouseholdSimulator(seed=SEED, channel_count=channels),
        default_channel_configs(channels),
        {},
        clock=MeterClock(start=start),
        sample_time_ms=sample_time_ms,
    )
