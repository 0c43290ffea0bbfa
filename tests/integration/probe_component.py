"""A throw-away component, written the way a new consumer is: one module, one line in the list."""

from __future__ import annotations

from types import MappingProxyType

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.errors import ConfigRejected
from homemeter.system.issues import Severity

MAX_SAMPLE_TIME = 5_000  # the probe "cannot" follow slower sampling: it refuses such a change


class Probe(Component):
    name = "probe"
    issue_codes = MappingProxyType({"probe_saw_snapshots": Severity.INFO})
    #: What every probe saw at stop: was the energy persister still running? (reverse order)
    stopped_while_persister: list[str] = []  # noqa: RUF012 - a test's shared record

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.sample_time = ctx.config.sampleTime

    async def start(self) -> None:
        self.spawn(self._consume(), "consume")
        self.set_state(State.RUNNING)

    async def _consume(self) -> None:
        async for snap in self.ctx.meter.snapshots():
            self.count("snapshots")
            self.last_seq = snap.seq
            if self.counters["snapshots"] == 3:
                self.raise_issue("probe_saw_snapshots", "the probe received three snapshots")

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        if new.sampleTime > MAX_SAMPLE_TIME:
            raise ConfigRejected(f"sampleTime: the probe cannot follow more than {MAX_SAMPLE_TIME} ms")
        self.sample_time = new.sampleTime

    async def stop(self) -> None:
        persister = self.ctx.components["energy"].status().state
        Probe.stopped_while_persister.append(persister.value)
        await super().stop()

    def details(self) -> dict[str, int]:
        return {"sampleTime": self.sample_time}
