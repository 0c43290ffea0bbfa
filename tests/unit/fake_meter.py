"""A hand-driven `MeterView` for component tests: the test decides every snapshot and its time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from homemeter.component import Context
from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase, Role
from homemeter.config.settings import Settings
from homemeter.meter.snapshot import ChannelReading, EnergyTotals, MeterSnapshot
from homemeter.meter.view import EnergyListener, LatestStream
from homemeter.store.energy_store import EnergyStore
from homemeter.system.issues import IssueRegistry


def reading(index: int, totals: EnergyTotals, role: Role = Role.LOAD, group: str = "") -> ChannelReading:
    return ChannelReading(
        index, f"Channel {index}", Phase.L1, group or f"Group {index}", role, True,
        230.0, 0.0, 0.0, 0.0, 0.0, 0.0, *totals.as_tuple(), None,
    )  # fmt: skip


class FakeMeter:
    """`MeterView` whose snapshots the test publishes with `publish(t, channels)`."""

    def __init__(self, t: float, channels: Sequence[ChannelReading]) -> None:
        self._stream = LatestStream(MeterSnapshot(1, t, 0, 230.0, 50.0, tuple(channels), ()))

    @property
    def latest(self) -> MeterSnapshot:
        return self._stream.latest

    def publish(self, t: float, channels: Sequence[ChannelReading]) -> MeterSnapshot:
        seq = self.latest.seq + 1
        return self._stream.publish(MeterSnapshot(seq, t, 0, 230.0, 50.0, tuple(channels), ()))

    def snapshots(self) -> AsyncIterator[MeterSnapshot]:
        return self._stream.snapshots()

    def on_energy_change(self, listener: EnergyListener) -> None:
        """Commands do not exist here: the test publishes the changed counters itself."""


def context(data_dir: Path, meter: FakeMeter, store: EnergyStore) -> Context:
    channels = tuple(ChannelConfig.default(i) for i in range(len(meter.latest.channels)))
    return Context(
        Settings(data_dir=data_dir), AppConfig(channels=channels), meter, IssueRegistry(), "test", store, 0
    )
