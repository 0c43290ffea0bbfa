"""Remote meters beside the meter: their pollers, status, issues and the channel names they give.

With `--source energyme|modbus|config` the meter's source is a `RemoteSources`; this component
builds a poller per remote meter, runs them as named tasks (each polls on the event loop, never
blocking it), and every `WATCH_S`:

- turns their health into the component status (`GET /system/components`: state, the reason, and
  per meter its URL, state, last error and counters) and into `/system/issues`: `source_unreachable`
  names each unreachable meter, why, and the channels that show no values meanwhile;
- lists each counter jump (a device reset or replaced) as `source_counter_jump`;
- copies the labels, roles, phases, groups and active flags of an EnergyMe device's channels into the
  homemeter channels that show them, through the configuration service (like a channel PUT: a role
  change restarts that channel's counters, as on the device).

A change of the `sources` configuration is applied live: the new pollers are built first (a model
file that cannot be read refuses the change with 409), then the old ones stop. A homemeter channel
that still shows the same meter channel keeps its counter baseline, so nothing is lost or counted
twice; one that shows another meter (channel) starts from a baseline.

At start the baselines saved with the totals (by the energy persister) are restored, so a restart,
clean or not, credits exactly what the meters counted while homemeter was stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase
from homemeter.config.sources import SourcesConfig
from homemeter.errors import ConfigError, ConfigRejected, HomemeterError
from homemeter.meter.source import CounterBaseline
from homemeter.meter.sources.remote import Jump, Poller, RemoteSources
from homemeter.meter.sources.remote_meters import build_pollers, effective_sources
from homemeter.store.energy_store import read_baselines
from homemeter.system.issues import Severity

log = logging.getLogger(__name__)

WATCH_S = 0.5  # health is a few attribute reads


class RemoteMeters(Component):
    name = "sources"
    issue_codes = MappingProxyType(
        {
            "source_unreachable": Severity.WARNING,  # a remote meter does not answer: no values
            "source_counter_jump": Severity.WARNING,  # a remote counter reset or jumped: not counted
            "source_channels_rejected": Severity.WARNING,  # a device's channel names do not fit
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._remote = ctx.source if isinstance(ctx.source, RemoteSources) else None
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._effective = SourcesConfig()
        self._rejected: tuple[ChannelConfig, ...] | None = None  # a table the configuration refused
        self._refusal: str | None = None  # why (logged once)

    async def start(self) -> None:
        if self._remote is None:
            self.set_state(State.DISABLED)
            return
        self.set_state(State.STARTING)
        effective = self._effective_of(self.ctx.config)
        pollers = build_pollers(effective)  # ConfigError stops the start, with why
        await self._use(effective, pollers, await self.ctx.database.call(read_baselines))
        self.spawn(self._watch(), "health")

    def _effective_of(self, config: AppConfig) -> SourcesConfig:
        return effective_sources(self.ctx.settings, config.sources, len(config.channels))

    async def _use(
        self,
        effective: SourcesConfig,
        pollers: tuple[Poller, ...],
        saved: tuple[CounterBaseline, ...] | None = None,
    ) -> None:
        """Poll these meters, continuing from `saved` baselines (None: the current pollers')."""
        assert self._remote is not None
        old = list(self._runs.values())
        for task in old:
            task.cancel()
        await asyncio.gather(*old, return_exceptions=True)
        # From here to the spawns no await: the meter takes from the old pollers or the new ones.
        baselines = self._remote.counter_baselines() if saved is None else saved
        self._remote.attach(effective, pollers)
        restored = self._remote.restore(baselines)
        self._runs = {p.name: self.spawn(p.run(), f"poll:{p.name}") for p in pollers}
        self._effective = effective
        self._rejected = None
        log.info(
            "remote meters: %s (counters continued for %d channels)",
            ", ".join(f"{m.name}={m.url}" for m in effective.meters) or "none",
            restored,
        )

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        if self._remote is None or old.sources == new.sources:
            return
        try:
            effective = self._effective_of(new)
            if effective == self._effective:
                return  # e.g. another meter's password, with --source energyme
            pollers = build_pollers(effective)  # reads model files: before anything stops
        except ConfigError as err:
            raise ConfigRejected(str(err)) from err
        await self._use(effective, pollers)

    # ----------------------------------------------------------------- watching
    async def _watch(self) -> None:
        while True:
            self.observe()
            await self._sync_channels()
            await asyncio.sleep(WATCH_S)

    def observe(self) -> None:
        """Status and issues from the pollers' health."""
        assert self._remote is not None
        pollers = self._remote.pollers
        total = {"polls": 0, "failures": 0, "counterJumps": 0}
        problems = []
        for poller in pollers:
            health = poller.health()
            for key in total:
                total[key] += health.counters.get(key, 0)
            if health.state == "unreachable":
                problems.append(self._unreachable(poller, health.last_error or "no answer"))
            if poller.jumps:
                self.ctx.issues.event("source_counter_jump", _jumps_message(poller.name, poller.jumps))
                poller.jumps.clear()
        self.counters = total
        if problems:
            self.set_state(State.DEGRADED, "; ".join(problems))
            self.raise_issue("source_unreachable", "; ".join(problems))
        elif any(p.health().state == "starting" for p in pollers):
            self.set_state(State.STARTING)
        else:
            self.set_state(State.RUNNING)
            self.clear_issue("source_unreachable")

    def _unreachable(self, poller: Poller, reason: str) -> str:
        channels = [m.channel for m in self._effective.channels if m.source == poller.name]
        shown = ", ".join(map(str, channels)) or "none"
        url = poller.config.url
        return f"source {poller.name!r} ({url}) unreachable: {reason}; channels {shown} show no values"

    async def _sync_channels(self) -> None:
        """An EnergyMe device's channel names, roles, phases and active flags, into homemeter's."""
        service = self.ctx.config_service
        if service is None:
            return
        current = service.current.channels
        try:
            wanted = self._synced(current)
        except ValueError as err:  # a channel the device has that homemeter cannot hold
            self._refused(None, err)
            return
        if wanted == current or wanted == self._rejected:
            return
        try:
            await service.update(channels=wanted)
        except (ValueError, HomemeterError) as err:  # ValueError: pydantic's ValidationError too
            self._refused(wanted, err)
            return
        self._rejected = self._refusal = None
        self.clear_issue("source_channels_rejected")
        log.info("channels updated from the remote meters")

    def _refused(self, wanted: tuple[ChannelConfig, ...] | None, err: Exception) -> None:
        """Logged once per table (the next device change is tried again), listed as an issue."""
        if str(err) != self._refusal:
            log.warning("channel names from the remote meter not applied: %s", err)
        self._rejected, self._refusal = wanted, str(err)
        self.raise_issue(
            "source_channels_rejected",
            f"The channel table of a remote meter does not fit homemeter's channels: {err}",
        )

    def _synced(self, current: tuple[ChannelConfig, ...]) -> tuple[ChannelConfig, ...]:
        assert self._remote is not None
        by_name = {p.name: p for p in self._remote.pollers}
        out = list(current)
        for mapping in self._effective.channels:
            poller = by_name.get(mapping.source)
            ident = poller.identities.get(mapping.sourceChannel) if poller is not None else None
            if ident is None or mapping.channel >= len(out):
                continue
            cfg = out[mapping.channel]
            phase = ident.phase if not (cfg.index == 0 and ident.phase is Phase.SPLIT) else cfg.phase
            doc = cfg.model_dump()
            doc.update(label=ident.label, role=ident.role, phase=phase, groupLabel=ident.group_label)
            doc["active"] = ident.active
            out[mapping.channel] = ChannelConfig.model_validate(doc)
        return tuple(out)

    # ----------------------------------------------------------------- status
    def details(self) -> Mapping[str, Any]:
        if self._remote is None:
            return {}
        meters = []
        for poller in self._remote.pollers:
            health = poller.health()
            meters.append(
                {
                    "name": poller.name,
                    "kind": poller.config.kind.value,
                    "url": poller.config.url,
                    "state": health.state,
                    "lastError": health.last_error,
                    "lastPoll": poller.last_poll,
                    "channels": [m.channel for m in self._effective.channels if m.source == poller.name],
                    **dict(health.counters),
                }
            )
        mapped = [
            {"channel": m.channel, "source": m.source, "sourceChannel": m.sourceChannel}
            for m in self._effective.channels
        ]
        return {"meters": meters, "channels": mapped}


def _jumps_message(source: str, jumps: list[Jump]) -> str:
    shown = "; ".join(
        f"channel {j.channel} {j.jump.quantity} {j.jump.before:.1f} -> {j.jump.after:.1f}" for j in jumps[:3]
    )
    more = f" and {len(jumps) - 3} more" if len(jumps) > 3 else ""
    return (
        f"Source {source!r}: {len(jumps)} counter(s) went down or jumped (a reset or replaced meter): "
        f"{shown}{more}. homemeter's totals did not go down; the counters are followed from their new values"
    )
