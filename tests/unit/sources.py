"""Small deterministic sources for meter tests (the real simulator has its own tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from homemeter.config.channel import ChannelConfig
from homemeter.errors import SourceUnavailable
from homemeter.meter.source import Measurement

VOLTAGE = 230.0


def measurement(p: float, q: float = 0.0, v: float = VOLTAGE) -> Measurement:
    s = (p * p + q * q) ** 0.5
    return Measurement(voltage=v, current=s / v, active_power=p, reactive_power=q, apparent_power=s)


@dataclass
class ConstantSource:
    """Every channel draws the same fixed power; optional read failures by call number."""

    power: dict[int, float] = field(default_factory=dict)
    reactive: float = 0.0
    fail_every: int = 0
    calls: list[tuple[int, float]] = field(default_factory=list)
    selected: list[int] = field(default_factory=list)
    blocking = False

    def factory_channels(self, count: int) -> tuple[ChannelConfig, ...]:
        return tuple(ChannelConfig.default(i) for i in range(count))

    def select(self, channel: int) -> None:
        self.selected.append(channel)

    def advance(self, at: float) -> None:
        pass

    def measure(self, channel: int, at: float) -> Measurement:
        self.calls.append((channel, at))
        if self.fail_every and len(self.calls) % self.fail_every == 0:
            raise SourceUnavailable("simulated SPI failure")
        return measurement(self.power.get(channel, 0.0), self.reactive)

    def grid_frequency(self, at: float) -> float:
        return 50.0
