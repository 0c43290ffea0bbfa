"""Energy accounting: power integrated over the real elapsed time, split into import and export
(or, for a remote meter, the energy it counted itself, credited as it arrives).

Counters only ever grow (Home Assistant's `total_increasing` reads any decrease as a meter reset);
only an explicit reset or set through the API lowers them.
"""

from __future__ import annotations

from dataclasses import dataclass

from homemeter.meter.reading import ProcessedReading
from homemeter.meter.snapshot import EnergyTotals

SECONDS_PER_HOUR = 3600.0


@dataclass(slots=True)
class EnergyCounter:
    """The five cumulative counters of one channel, in Wh / VArh / VAh (double precision)."""

    active_imported: float = 0.0
    active_exported: float = 0.0
    reactive_imported: float = 0.0
    reactive_exported: float = 0.0
    apparent: float = 0.0

    def add(self, reading: ProcessedReading, elapsed_s: float) -> None:
        """Credit `elapsed_s` seconds at the reading's powers (zero-order hold since the last one).

        The sign of each power only chooses the counter; a non-positive interval adds nothing, so a
        repeated or out-of-order reading can never double-count or subtract.
        """
        if elapsed_s <= 0.0:
            return
        hours = elapsed_s / SECONDS_PER_HOUR
        p = reading.active_power
        if p > 0.0:
            self.active_imported += p * hours
        elif p < 0.0:
            self.active_exported -= p * hours
        q = reading.reactive_power
        if q > 0.0:
            self.reactive_imported += q * hours
        elif q < 0.0:
            self.reactive_exported -= q * hours
        self.apparent += reading.apparent_power * hours

    def credit(self, delta: EnergyTotals, swap: bool = False) -> None:
        """Add energy a remote meter counted (Wh, VArh, VAh); `swap` exchanges import and export
        (a reversed channel). Negative parts are ignored: totals never go down."""
        ai, ae, ri, re, s = (max(x, 0.0) for x in delta.as_tuple())
        if swap:
            ai, ae, ri, re = ae, ai, re, ri
        self.active_imported += ai
        self.active_exported += ae
        self.reactive_imported += ri
        self.reactive_exported += re
        self.apparent += s

    def totals(self) -> EnergyTotals:
        return EnergyTotals(
            self.active_imported,
            self.active_exported,
            self.reactive_imported,
            self.reactive_exported,
            self.apparent,
        )

    @classmethod
    def from_totals(cls, totals: EnergyTotals) -> EnergyCounter:
        return cls(*totals.as_tuple())
