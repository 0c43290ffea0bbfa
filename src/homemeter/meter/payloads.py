"""Payloads built from a snapshot, shared by every consumer that sends them.

The meter-values array is the body of `GET /api/v1/ade7953/meter-values` and, byte for byte, the
custom MQTT payload. It changes once per snapshot (5/s) but is read far more often (dashboards poll
every second, Home Assistant every 10 s, benchmarks thousands of times a second), so one
`SnapshotBytes` per service renders it lazily the first time a reader sees a new snapshot.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from homemeter.meter.quantities import QUANTITIES
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot, round_half_away

_JSON = (b"content-type", b"application/json")
_FIELDS = tuple((q.key, q.attr, q.decimals) for q in QUANTITIES)


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
    """Caches `render(snapshot)` as JSON bytes for the latest snapshot only.

    Keyed on the snapshot object, not `seq`: a restarted meter (or a test) may reuse a sequence number.
    """

    def __init__(self, latest: Callable[[], MeterSnapshot], render: Callable[[MeterSnapshot], object]):
        self._latest = latest
        self._render = render
        self._snapshot: MeterSnapshot | None = None
        self._body = b""
        self._headers: list[tuple[bytes, bytes]] = []

    def get(self) -> bytes:
        return self.response()[0]

    def response(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The body and its ASGI headers, as Starlette's Response would send them."""
        snap = self._latest()
        if snap is not self._snapshot:
            self._body = orjson.dumps(self._render(snap))
            self._headers = [(b"content-length", b"%d" % len(self._body)), _JSON]
            self._snapshot = snap
        return self._body, self._headers
