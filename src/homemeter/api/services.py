"""What the HTTP layer may use. Handlers read snapshots and send commands; they own no state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from homemeter.logs import RingHandler
from homemeter.meter.sampler import Meter
from homemeter.store.config import ConfigService
from homemeter.store.credentials import Credentials


@dataclass
class RequestStats:
    """webServer counters of `GET /system/statistics` (status < 400 vs >= 400)."""

    requests: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Services:
    meter: Meter
    config: ConfigService
    credentials: Callable[[], Credentials]
    save_energy: Callable[[], Awaitable[None]]
    device_id: str
    started_monotonic: float
    logs: RingHandler = field(default_factory=RingHandler)
    stats: RequestStats = field(default_factory=RequestStats)
