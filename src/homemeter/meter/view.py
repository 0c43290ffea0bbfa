"""What consumers see of the meter: a read-only view, and the few commands the API may send.

Consumers (API, Modbus, MQTT, InfluxDB, history, UI) get a `MeterView` and never the `Meter`: they
read the latest immutable snapshot or iterate the latest-only stream, so a slow consumer skips
snapshots and never holds the meter back. The API additionally gets a `MeterControl`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from homemeter.config.channel import ChannelConfig
from homemeter.meter.snapshot import EnergyTotals, MeterSnapshot

#: Called after the meter changed energy totals outside sampling (role change, reset, restore);
#: the persister saves on it, so the change survives a crash right after the API answered.
EnergyListener = Callable[[], Awaitable[None]]


class MeterView(Protocol):
    @property
    def latest(self) -> MeterSnapshot:
        """The newest snapshot (counters included)."""
        ...

    def snapshots(self) -> AsyncIterator[MeterSnapshot]:
        """Latest-only stream: each new snapshot once; skipped ones are never queued."""
        ...

    def on_energy_change(self, listener: EnergyListener) -> None:
        """`listener` is awaited after a command changed energy totals (role change, reset, restore)."""
        ...


class LatestStream:
    """The latest-only stream behind `MeterView`: the newest snapshot and a wake-up for waiters.

    Publishing replaces the snapshot and wakes every waiting iterator once; nothing is queued, so a
    slow consumer reads the newest snapshot when it next looks.
    """

    def __init__(self, first: MeterSnapshot) -> None:
        self.latest = first
        self._changed = asyncio.Event()

    def publish(self, snapshot: MeterSnapshot) -> MeterSnapshot:
        self.latest = snapshot
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return snapshot

    async def snapshots(self) -> AsyncIterator[MeterSnapshot]:
        seq = 0
        while True:
            snap = self.latest
            if snap.seq == seq:
                await self._changed.wait()
                continue
            seq = snap.seq
            yield snap


class MeterControl(Protocol):
    """The commands the API may send; each publishes a new snapshot before returning."""

    async def apply_channel(self, cfg: ChannelConfig) -> None:
        """A channel's new configuration, live; a role change zeroes its energy (as the device)."""
        ...

    async def reset_energy(self, index: int | None = None) -> None:
        """Zero one channel's counters, or all of them."""
        ...

    async def set_energy(self, index: int, totals: EnergyTotals) -> None:
        """Replace one channel's counters (restore of a backup, migration)."""
        ...
