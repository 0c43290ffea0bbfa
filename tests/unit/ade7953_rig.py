"""The ADE7953 driver on an emulated board, in a meter: what the ADE7953 tests share."""

from __future__ import annotations

from dataclasses import dataclass, field

from homemeter.config.channel import ChannelConfig
from homemeter.meter.accounting import EnergyCounter
from homemeter.meter.clock import MeterClock
from homemeter.meter.reading import process
from homemeter.meter.sampler import Meter
from homemeter.meter.source import Measurement
from homemeter.meter.sources.ade7953 import Ade7953Source, EmulatedBoard, emulated_source
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs

NOON = 1_782_907_200.0  # 2026-07-01T12:00:00Z: PV, battery and appliances all busy
SEED = 7


@dataclass
class Recorder:
    """Every reading the driver delivered, next to what the household drew in that window.

    With a `meter`, it also keeps two energy ledgers the meter's way (same pipeline, same elapsed
    times): one from the driver's readings, which must equal the meter's totals, and one from the
    household's true draw in the very windows the chip measured. Comparing those two isolates the
    driver's error from the meter's sampling (a mux channel's power held for seconds).
    """

    source: Ade7953Source
    board: EmulatedBoard
    meter: Meter | None = None
    readings: list[tuple[int, Measurement, Measurement | None]] = field(default_factory=list)
    driver: list[EnergyCounter] = field(default_factory=list)
    truth: list[EnergyCounter] = field(default_factory=list)

    def __post_init__(self) -> None:
        inner = self.source.measure
        meter = self.meter
        if meter is not None:
            n = meter.channel_count
            self.driver = [EnergyCounter() for _ in range(n)]
            self.truth = [EnergyCounter() for _ in range(n)]
            last = [meter.latest.taken_at] * n  # the meter counts energy from its start

        def measure(channel: int, at: float) -> Measurement:
            m = inner(channel, at)
            truth = self.board.truth(channel)
            self.readings.append((channel, m, truth))
            if meter is not None and truth is not None:
                cfg = meter.channels[channel]
                reading, expected = process(m, cfg), process(truth, cfg)
                if reading is not None:
                    dt, last[channel] = at - last[channel], at
                    self.driver[channel].add(reading, dt)
                    if expected is not None:
                        self.truth[channel].add(expected, dt)
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
