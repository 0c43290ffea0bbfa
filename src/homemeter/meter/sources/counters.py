"""Following a remote meter's cumulative counters as deltas, so homemeter's totals never go down.

Homemeter keeps its own totals and adds what the remote meter counted since the previous reading.
A counter that moves by more than a household can use in the elapsed time (a device reset to zero, a
replaced meter with its own history, a device that restored an older save after a power cut) is a
jump: the counter becomes the new baseline and nothing is credited for the jump itself, except after
a reset to zero the little it counted since, when that is plausible for the time that passed. A
counter never goes down by itself, so any decrease is a jump. Each jump is reported (logged and
listed as an issue by the sources component).

A quantity the remote meter has no counter for (a per-phase apparent energy on an Eastron meter) is
integrated from its power over the time since the previous reading, at most `MAX_HOLD_S`: after an
outage that energy is unknown, so it is not invented.

After a restart a follower continues from the counters saved with homemeter's totals (`restore`):
the first reading's step from them is credited, checked against the time since that saved reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from homemeter.meter.quantities import ENERGY_QUANTITIES
from homemeter.meter.reading import POWER_LIMIT
from homemeter.meter.snapshot import EnergyTotals
from homemeter.meter.source import Measurement

SECONDS_PER_HOUR = 3600.0
#: Slack on the plausible step (Wh): a counter's resolution (an Eastron float32 kWh counter resolves
#: ~8 Wh at 100 MWh, the device's JSON 0.1 Wh) must not turn a normal step into a jump.
RESOLUTION = 10.0
MAX_HOLD_S = 10.0  # an integrated quantity covers at most this much time since the last reading


@dataclass(frozen=True, slots=True)
class CounterJump:
    """A counter that moved implausibly: what it was, what it is, what homemeter credited."""

    quantity: str  # the meter-values key, e.g. activeEnergyImported
    before: float
    after: float
    credited: float


class CounterFollower:
    """One remote channel's five counters (Wh, VArh, VAh); `None` where the meter has none."""

    def __init__(self) -> None:
        self._last: list[float | None] = [None] * len(ENERGY_QUANTITIES)

    def restore(self, counters: Sequence[float | None]) -> None:
        """Continue from saved counters: the next `follow` credits its step from them."""
        self._last = list(counters)

    def follow(
        self,
        counters: Sequence[float | None],
        m: Measurement,
        elapsed_s: float | None,
        integrate: bool = True,
    ) -> tuple[EnergyTotals, list[CounterJump]]:
        """The energy since the previous call; `elapsed_s` None on the first reading (a baseline).

        `integrate` False: a quantity without a counter gets nothing for this step (the first reading
        after a restart: the power during the stop is unknown).
        """
        powers = _powers(m)
        limit = RESOLUTION + POWER_LIMIT * (elapsed_s or 0.0) / SECONDS_PER_HOUR
        hold = min(elapsed_s or 0.0, MAX_HOLD_S) if integrate else 0.0
        deltas: list[float] = []
        jumps: list[CounterJump] = []
        for k, (counter, power) in enumerate(zip(counters, powers, strict=True)):
            if counter is None:
                deltas.append(power * hold / SECONDS_PER_HOUR)
                continue
            last, self._last[k] = self._last[k], counter
            if last is None or elapsed_s is None:
                deltas.append(0.0)  # the first reading is the baseline
                continue
            step = counter - last
            if 0.0 <= step <= limit:
                deltas.append(step)
                continue
            # Gone down (a meter's counters never do by themselves) or up by more than plausible.
            credited = counter if step < 0.0 and _reset_to_zero(last, counter, limit) else 0.0
            deltas.append(credited)
            jumps.append(CounterJump(ENERGY_QUANTITIES[k].key, last, counter, credited))
        return EnergyTotals(*deltas), jumps


def _reset_to_zero(last: float, counter: float, limit: float) -> bool:
    """A counter that went down restarted from zero when what it shows now could have been counted
    since and is well below where it was; otherwise (an older save restored after a power cut, a
    replacement with its own history) its value was counted before, or elsewhere."""
    return 0.0 <= counter <= limit and counter <= last / 2.0


def _powers(m: Measurement) -> tuple[float, float, float, float, float]:
    """The rate each counter grows at (W, VAr, VA), by the sign of its power."""
    p, q = m.active_power, m.reactive_power
    return (max(p, 0.0), max(-p, 0.0), max(q, 0.0), max(-q, 0.0), abs(m.apparent_power))
