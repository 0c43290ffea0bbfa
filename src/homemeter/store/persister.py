"""The energy persister: the component that keeps the energy totals on disk.

It saves the latest snapshot's totals every `energySaveInterval` seconds, at once when the meter
announces a change made by a command (role change, reset, restore: so it survives a crash right
after the API answered), and a last time when the service stops. It is the first component entered,
so it is the last one left: it sees the final snapshot.

With remote meters as the source, the remote counters the totals include are taken in the same
step of the event loop as the snapshot and saved in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.errors import StoreError
from homemeter.meter.source import BaselineSource
from homemeter.system.issues import Severity

log = logging.getLogger(__name__)


class EnergyPersister(Component):
    name = "energy"
    issue_codes = MappingProxyType(
        {
            "energy_save_failing": Severity.ERROR,  # totals live only in memory until a save works
            "energy_db_recovered": Severity.WARNING,  # started from the last good copy
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._store = ctx.database
        self.interval = ctx.config.energySaveInterval
        self._last_save: float | None = None
        self._save_lock = asyncio.Lock()
        # At 0 from the start, so that an alert on the first save error sees it rise (/metrics).
        self.counters.update(saves=0, saveErrors=0)

    async def start(self) -> None:
        if self._store.recovered_from is not None:
            self.ctx.issues.event(
                "energy_db_recovered",
                f"The energy database was damaged and restored from its last good copy; "
                f"the damaged file was kept as {self._store.recovered_from}",
            )
        self.ctx.meter.on_energy_change(self.save)
        self.spawn(self._periodic(), "periodic")
        self.set_state(State.RUNNING)

    async def stop(self) -> None:
        await super().stop()
        await self.save()  # the final snapshot: the meter published it before components stop

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        self.interval = new.energySaveInterval

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.save()

    async def save(self) -> None:
        """Save the latest totals now (serialised: a signalled save waits for a periodic one)."""
        async with self._save_lock:
            # No await between these two: the baselines match the snapshot's totals.
            totals = {c.index: c.energy for c in self.ctx.meter.latest.channels}
            source = self.ctx.source
            baselines = source.counter_baselines() if isinstance(source, BaselineSource) else None
            try:
                await self._store.save_totals(totals, baselines)
            except StoreError as err:
                # Totals stay in memory and the next save retries: a full disk loses nothing yet.
                # One error line per outage; the retries every interval would flood the log.
                self.count("saveErrors")
                failing = self._state is State.DEGRADED
                (log.debug if failing else log.error)("energy save failed, will retry error=%s", err)
                self.set_state(State.DEGRADED, str(err))
                self.raise_issue("energy_save_failing", f"Energy totals cannot be saved: {err}")
            else:
                self.count("saves")
                self._last_save = time.time()
                if self._state is State.DEGRADED:
                    log.info("energy saves work again")
                    self.set_state(State.RUNNING)
                self.clear_issue("energy_save_failing")

    def details(self) -> Mapping[str, Any]:
        return {"interval": self.interval, "lastSave": self._last_save}
