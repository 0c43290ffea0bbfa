"""The meter-values payload, serialized once per snapshot and served as ready bytes.

The body changes once per snapshot (5/s) but is requested far more often (dashboards poll every
second, Home Assistant every 10 s, benchmarks thousands of times a second), so it is built lazily the
first time a request sees a new snapshot and then reused.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from homemeter.meter.snapshot import (
    METER_VALUE_FIELDS,
    ChannelReading,
    MeterSnapshot,
    round_half_away,
)

_FIELDS = tuple((q.key, q.attr, q.decimals) for q in METER_VALUE_FIELDS)


def channel_values(reading: ChannelReading) -> dict[str, float]:
    """The `data` object of one channel, rounded as the device rounds, in the device's key order."""
    return {key: round_half_away(getattr(reading, attr), d) for key, attr, d in _FIELDS}


def meter_values(snapshot: MeterSnapshot) -> list[dict[str, object]]:
    """The `GET /api/v1/ade7953/meter-values` array (also the MQTT payload)."""
    return [
        {
            "index": c.index,
            "label": c.label,
            "phase": int(c.phase),
            "groupLabel": c.group_label,
            "role": c.role.value,
            "data": channel_values(c),
        }
        for c in snapshot.with_readings()
    ]


class SnapshotBytes:
    """Caches `render(snapshot)` as JSON bytes for the latest snapshot only."""

    def __init__(self, latest: Callable[[], MeterSnapshot], render: Callable[[MeterSnapshot], object]):
        self._latest = latest
        self._render = render
        self._seq = -1
        self._body = b""

    def get(self) -> bytes:
        snap = self._latest()
        if snap.seq != self._seq:
            self._body = orjson.dumps(self._render(snap))
            self._seq = snap.seq
        return self._body
