"""The ADE7953 beside the meter: its configuration, its health in the status and issue list.

The meter reads the chip; this component does everything else a user sees of it. It hands each
configuration change to the source (calibration registers, CT specifications, sample time; the chip
is written from the sampling thread), turns the source's health into a component status
(`GET /system/components`) and issues (`GET /system/issues`), gives the API raw register access and
waveform capture, and releases the SPI device and GPIO lines at stop. With the simulator it is
disabled; its waveform captures are synthetic (sines from the latest reading).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.meter.source import ConfigurableSource, MonitoredSource, RegisterAccess, SourceHealth
from homemeter.meter.sources.simulator import HouseholdSimulator
from homemeter.meter.waveform import SyntheticWaveforms, WaveformSource
from homemeter.system.issues import Severity

POLL_S = 1.0  # health is a few attribute reads: cheap enough every second


class Ade7953Status(Component):
    name = "ade7953"
    issue_codes = MappingProxyType(
        {
            "ade7953_read_failures": Severity.WARNING,  # the device's code: readings are failing
            "ade7953_chip_reset": Severity.WARNING,  # the chip reset itself and was set up again
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        source = ctx.source
        self._monitored = source if isinstance(source, MonitoredSource) else None
        self._configurable = source if isinstance(source, ConfigurableSource) else None
        #: Raw register access for `GET/PUT /ade7953/register`; None without a chip.
        self.registers = source if isinstance(source, RegisterAccess) else None
        #: Waveform capture for `ade7953/waveform/*`; None for remote meters (nothing to sample).
        self.waveforms: WaveformSource | None = None
        if isinstance(source, WaveformSource):
            self.waveforms = source
        elif isinstance(source, HouseholdSimulator):
            self.waveforms = SyntheticWaveforms(lambda: ctx.meter.latest)
        self._health: SourceHealth | None = None
        self._resets = 0

    async def start(self) -> None:
        if self._configurable is not None:
            self._configurable.configure(self.ctx.config)  # ConfigRejected stops the start, with why
        if self._monitored is None:
            self.set_state(State.DISABLED)
            return
        self.set_state(State.STARTING)
        self.spawn(self._watch(), "health")

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        if self._configurable is not None:
            self._configurable.configure(new)

    async def stop(self) -> None:
        await super().stop()
        if self._monitored is not None:
            # Waits for a read in progress (at most a window), so off the event loop.
            await asyncio.to_thread(self._monitored.close)

    async def _watch(self) -> None:
        assert self._monitored is not None
        while True:
            self.observe(self._monitored.health())
            await asyncio.sleep(POLL_S)

    def observe(self, health: SourceHealth) -> None:
        """Status and issues from one health report."""
        self._health = health
        self.counters = dict(health.counters)
        if health.ok:
            self.set_state(State.RUNNING)
            self.clear_issue("ade7953_read_failures")
        elif health.state == "starting":
            self.set_state(State.STARTING, health.last_error)
        else:
            self.set_state(State.DEGRADED, health.last_error)
            self.raise_issue(
                "ade7953_read_failures",
                f"The ADE7953 is not delivering readings ({health.state}): {health.last_error}",
            )
        resets = health.counters.get("chipResets", 0)
        if resets > self._resets:
            self.ctx.issues.event(
                "ade7953_chip_reset",
                f"The ADE7953 reset itself ({resets} time(s) since start, supply glitch?) and was "
                "set up again; readings during the reset were skipped, energy was carried over",
            )
            self._resets = resets

    def details(self) -> Mapping[str, Any]:
        if self._health is None:
            return {}
        return {"chip": self._health.state, **self._health.details}
