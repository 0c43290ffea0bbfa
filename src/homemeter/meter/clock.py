"""The meter's clock: wall time, optionally running faster than real time for the simulator."""

from __future__ import annotations

import time


class MeterClock:
    """Epoch seconds that advance `speed` times faster than real time, from the moment of creation.

    With speed 1 this is the wall clock (anchored once, then monotonic, so NTP steps do not make
    energy intervals negative or huge).
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.start = time.time() if start is None else start
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._mono0) * self.speed

    def real_seconds(self, simulated: float) -> float:
        """How long to sleep in real time for `simulated` seconds to pass."""
        return simulated / self.speed
