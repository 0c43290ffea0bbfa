"""Home Assistant state messages whose energy totals never go down, not even after a crash.

Home Assistant reads any decrease of a `total_increasing` sensor as a meter reset. The meter's totals
only grow, except after a crash or power cut: it resumes from its last save (at most
`energySaveInterval` old), below what was already published. The per-channel state topics are
therefore retained, and on every connection the publisher reads them back from the broker (the
broker is the memory; nothing is written to the SD card for this): each energy value published is at
least the highest one seen, so Home Assistant sees the total stand still until the meter catches up.
A deliberate reset (energy reset, role change, restore of a backup) is let through: the meter
announces it, and the floors of the channels whose totals dropped are forgotten.

The meter-values array on the configured topic is not touched: it stays the REST body.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from homemeter.meter.payloads import channel_values
from homemeter.meter.quantities import ENERGY_QUANTITIES
from homemeter.meter.snapshot import ChannelReading

_ENERGY_KEYS = tuple(q.key for q in ENERGY_QUANTITIES)


class StateFloor:
    """The highest energy values published per channel (or read back from the broker)."""

    def __init__(self) -> None:
        self._floor: dict[int, dict[str, float]] = {}

    def learn(self, index: int, payload: bytes) -> None:
        """A state message read back from the broker (anything unreadable is ignored)."""
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            for key in _ENERGY_KEYS:
                value = doc.get(key)
                if isinstance(value, int | float):
                    self._raise(index, key, float(value))

    def forget_dropped(self, channels: Iterable[ChannelReading]) -> None:
        """After a deliberate reset: channels now below their floor start afresh."""
        for channel in channels:
            floor = self._floor.get(channel.index)
            values = channel_values(channel)
            if floor and any(values[key] < floor.get(key, 0.0) for key in _ENERGY_KEYS):
                del self._floor[channel.index]

    def state(self, channel: ChannelReading) -> bytes:
        """The channel's `data` object with each energy at least its floor (which it then raises)."""
        values = channel_values(channel)
        for key in _ENERGY_KEYS:
            values[key] = self._raise(channel.index, key, values[key])
        return orjson.dumps(values)

    def _raise(self, index: int, key: str, value: float) -> float:
        floor = self._floor.setdefault(index, {})
        highest = max(floor.get(key, value), value)
        floor[key] = highest
        return highest
