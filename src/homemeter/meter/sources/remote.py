"""Remote meters as one `PolledSource`: pollers on the event loop, channels mapped onto homemeter's.

Each remote meter has a `Poller`: an async loop (run by the sources component) that fetches the
meter's values every `pollInterval` seconds without blocking the event loop, follows its counters
as deltas (`counters.py`) and keeps, per meter channel, the newest values and the energy not yet
taken. `RemoteSources` is what the meter samples: homemeter channel k takes from the poller and
meter channel that `sources.channels` names.

A meter is unreachable after `FAILURES_UNREACHABLE` failed polls in a row; its channels then have no
values (the meter shows none, never zeros) and its counters' baselines stay, so the first good poll
after the outage credits what the meter counted meanwhile: no gap, no double count.

Across a restart: when the meter takes a channel's energy, the counters it came from become that
channel's *taken baseline*. The meter takes and publishes in one step of the event loop, so the
taken baselines always match the latest snapshot's totals; the energy persister saves both in one
transaction (`counter_baselines`), and the next start continues from them (`restore`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase, Role
from homemeter.config.sources import MeterSource, SourcesConfig
from homemeter.errors import SourceUnavailable
from homemeter.meter.snapshot import EnergyTotals
from homemeter.meter.source import CounterBaseline, Measurement, RemoteReading, SourceHealth
from homemeter.meter.sources.counters import CounterFollower, CounterJump

log = logging.getLogger(__name__)

FAILURES_UNREACHABLE = 2  # one failed poll is a blip (values held); two in a row: no values
DEFAULT_FREQUENCY = 50.0


@dataclass(frozen=True, slots=True)
class RemoteChannel:
    """One meter channel as a poll found it."""

    measurement: Measurement
    power_factor: float | None
    counters: tuple[float | None, ...]  # ENERGY_QUANTITIES order, Wh / VArh / VAh; None: no counter


@dataclass(frozen=True, slots=True)
class Identity:
    """How the remote meter names one of its channels (an EnergyMe device's channel table)."""

    label: str
    role: Role
    phase: Phase
    group_label: str
    active: bool


@dataclass(frozen=True, slots=True)
class Poll:
    """What one poll read: the channels with a value now, and the line frequency if the meter has it."""

    channels: Mapping[int, RemoteChannel]
    frequency: float | None = None
    identities: Mapping[int, Identity] | None = None  # only when the meter's channel table was read


@dataclass(frozen=True, slots=True)
class Jump:
    """A counter jump, with where it happened (for the log and the issue list)."""

    source: str
    channel: int  # the meter's channel
    jump: CounterJump


@dataclass
class _Pending:
    measurement: Measurement
    power_factor: float | None
    counters: tuple[float | None, ...]  # the newest reading's, which `energy` brings the totals up to
    read_at: float  # epoch s of that reading
    energy: list[float] = field(default_factory=lambda: [0.0] * 5)


class Poller(ABC):
    """One remote meter: fetch on a fixed cadence, follow its counters, keep what the meter takes."""

    def __init__(
        self,
        config: MeterSource,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock
        self._wall = wall
        self._followers: dict[int, CounterFollower] = {}
        self._last_seen: dict[int, float] = {}  # meter channel -> clock of its last reading
        self._pending: dict[int, _Pending] = {}
        #: meter channel -> (counters, epoch s) the energy the meter took last came from
        self._taken: dict[int, tuple[tuple[float | None, ...], float]] = {}
        self._restored: dict[int, float] = {}  # meter channel -> epoch s of its restored baseline
        self._present: frozenset[int] = frozenset()
        self._frequency: float | None = None
        self._failures = 0  # failed polls in a row
        self._ever = False
        self._error: str | None = None
        self.identities: Mapping[int, Identity] = MappingProxyType({})
        self.last_poll: float | None = None  # epoch s of the last good poll
        self.counters: Counter[str] = Counter()
        self.jumps: list[Jump] = []  # drained by the sources component

    # ----------------------------------------------------------------- the meter's side
    @property
    def reachable(self) -> bool:
        return self._ever and self._failures < FAILURES_UNREACHABLE

    def take(self, channel: int) -> RemoteReading | None:
        if not self.reachable:
            raise SourceUnavailable(f"{self.name}: {self._error or 'not read yet'}")
        if channel not in self._present:
            raise SourceUnavailable(f"{self.name}: channel {channel} has no reading")
        pending = self._pending.pop(channel, None)
        if pending is None:
            return None
        self._taken[channel] = (pending.counters, pending.read_at)
        return RemoteReading(pending.measurement, pending.power_factor, EnergyTotals(*pending.energy))

    @property
    def frequency(self) -> float | None:
        return self._frequency if self.reachable else None

    def taken(self, channel: int) -> tuple[tuple[float | None, ...], float] | None:
        """The counters (and when they were read) the meter's totals include for this channel."""
        return self._taken.get(channel)

    def restore(self, channel: int, counters: tuple[float | None, ...], read_at: float) -> None:
        """Continue this channel from counters saved with homemeter's totals (before polling starts)."""
        follower = self._followers[channel] = CounterFollower()
        follower.restore(counters)
        self._taken[channel] = (counters, read_at)
        self._restored[channel] = read_at

    # ----------------------------------------------------------------- polling
    async def run(self) -> None:
        """Poll until cancelled, on a fixed cadence (a slow answer delays only the next poll)."""
        interval = self.config.pollInterval
        try:
            due = self._clock()
            while True:
                await self.poll_once()
                due = max(due + interval, self._clock())
                await asyncio.sleep(due - self._clock())
        finally:
            await self.close()

    @property
    def requests_per_poll(self) -> int:
        """The most requests one poll makes (each may take `timeout`)."""
        return 1

    async def poll_once(self) -> None:
        # The client's own timeout per request comes first; this bounds a poll that trickles.
        limit = self.config.timeout * self.requests_per_poll + 1.0
        try:
            async with asyncio.timeout(limit):
                result = await self.fetch()
        except TimeoutError:
            self._failed(f"no complete answer within {limit:g} s")
        except SourceUnavailable as err:
            self._failed(str(err))
        except Exception as err:
            # A bug or a library error nobody mapped: polling goes on (the meter may recover), the
            # traceback is logged once and the reason shows in the status.
            if self.counters["unexpected"] == 0:
                log.exception("source poll failed unexpectedly source=%s", self.name)
            self.counters["unexpected"] += 1
            self._failed(f"unexpected error: {err!r}")
        else:
            self._accept(result)

    def _failed(self, reason: str) -> None:
        self.counters["failures"] += 1
        self._failures += 1
        first = self._error != reason or self._failures == FAILURES_UNREACHABLE
        self._error = reason
        if self._failures == FAILURES_UNREACHABLE:
            log.warning("source unreachable source=%s url=%s error=%s", self.name, self.config.url, reason)
        elif first:
            log.debug("source poll failed source=%s error=%s", self.name, reason)

    def _accept(self, poll: Poll) -> None:
        now = self._clock()
        if not self.reachable and self._ever:
            log.info("source reachable again source=%s", self.name)
        self.counters["polls"] += 1
        self._failures = 0
        self._ever = True
        self._error = None
        wall = self.last_poll = self._wall()
        if poll.frequency is not None and math.isfinite(poll.frequency):
            self._frequency = poll.frequency
        if poll.identities is not None:
            self.identities = MappingProxyType(dict(poll.identities))
        jumps = len(self.jumps)
        for channel, values in poll.channels.items():
            self._credit(channel, values, now, wall)
        self._present = frozenset(poll.channels)
        if len(self.jumps) > jumps:
            first = self.jumps[jumps]
            log.warning(
                "source counters jumped source=%s counters=%d first_channel=%d quantity=%s before=%.1f "
                "after=%.1f (a reset or replaced meter: homemeter's totals do not go down)",
                self.name, len(self.jumps) - jumps, first.channel, first.jump.quantity,
                first.jump.before, first.jump.after,
            )  # fmt: skip

    def _credit(self, channel: int, values: RemoteChannel, now: float, wall: float) -> None:
        follower = self._followers.setdefault(channel, CounterFollower())
        seen = self._last_seen.get(channel)
        self._last_seen[channel] = now
        restored = self._restored.pop(channel, None)
        if seen is None and restored is not None:
            # The first reading after a restart: its step from the saved counters is what the meter
            # counted while homemeter was stopped (plausible over the wall time since that reading).
            elapsed: float | None = max(wall - restored, 0.0)
            delta, jumps = follower.follow(values.counters, values.measurement, elapsed, integrate=False)
        else:
            elapsed = None if seen is None else now - seen
            delta, jumps = follower.follow(values.counters, values.measurement, elapsed)
        for jump in jumps:
            self.counters["counterJumps"] += 1
            log.debug(
                "source counter jump source=%s channel=%d quantity=%s before=%.1f after=%.1f credited=%.1f",
                self.name, channel, jump.quantity, jump.before, jump.after, jump.credited,
            )  # fmt: skip
            self.jumps.append(Jump(self.name, channel, jump))
        pending = self._pending.get(channel)
        if pending is None:
            pending = self._pending[channel] = _Pending(
                values.measurement, values.power_factor, values.counters, wall
            )
        pending.measurement, pending.power_factor = values.measurement, values.power_factor
        pending.counters, pending.read_at = values.counters, wall
        for k, x in enumerate(delta.as_tuple()):
            pending.energy[k] += x

    def health(self) -> SourceHealth:
        state = "running" if self.reachable else "unreachable" if self._error else "starting"
        return SourceHealth(
            state,
            self.reachable,
            self._error,
            MappingProxyType({k: self.counters[k] for k in ("polls", "failures", "counterJumps")}),
            MappingProxyType({"channels": sorted(self._present)}),
        )

    # ----------------------------------------------------------------- per kind
    @abstractmethod
    async def fetch(self) -> Poll:
        """Read the meter once; raise `SourceUnavailable` with a reason a user can act on."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection (called when polling stops)."""


class RemoteSources:
    """The `SampleSource` (and `PolledSource`) of homemeter channels shown from remote meters."""

    blocking = False  # `take` is a dictionary lookup; the network waits happen in the pollers

    def __init__(self, factory: Callable[[int], tuple[ChannelConfig, ...]]) -> None:
        self._factory = factory
        self.pollers: tuple[Poller, ...] = ()
        self.config = SourcesConfig()
        self._routes: dict[int, tuple[Poller, int]] = {}

    def attach(self, config: SourcesConfig, pollers: tuple[Poller, ...]) -> None:
        """Use these pollers (already built for `config`); the sources component runs them."""
        by_name = {p.name: p for p in pollers}
        self._routes = {m.channel: (by_name[m.source], m.sourceChannel) for m in config.channels}
        self.pollers = pollers
        self.config = config

    def route(self, channel: int) -> tuple[Poller, int] | None:
        return self._routes.get(channel)

    def counter_baselines(self) -> tuple[CounterBaseline, ...]:
        """Per homemeter channel, the remote counters its totals include (saved with the totals)."""
        out = []
        for channel, (poller, source_channel) in sorted(self._routes.items()):
            taken = poller.taken(source_channel)
            if taken is not None:
                counters, read_at = taken
                url = poller.config.url
                out.append(CounterBaseline(channel, poller.name, url, source_channel, counters, read_at))
        return tuple(out)

    def restore(self, baselines: Iterable[CounterBaseline]) -> int:
        """Continue from saved baselines whose channel still shows the same meter channel; how many."""
        used = 0
        for b in baselines:
            route = self._routes.get(b.channel)
            if route is None:
                continue
            poller, source_channel = route
            if (poller.name, poller.config.url, source_channel) == (b.source, b.url, b.source_channel):
                poller.restore(source_channel, b.counters, b.read_at)
                used += 1
        return used

    # ----------------------------------------------------------------- SampleSource
    def factory_channels(self, count: int) -> tuple[ChannelConfig, ...]:
        return self._factory(count)

    def select(self, channel: int) -> None:
        """Nothing to switch: every channel is its own meter's."""

    def advance(self, at: float) -> None:
        """The remote meters keep their own time."""

    def take(self, channel: int) -> RemoteReading | None:
        route = self._routes.get(channel)
        if route is None:
            raise SourceUnavailable(f"channel {channel} is not mapped to a source")
        return route[0].take(route[1])

    def measure(self, channel: int, at: float) -> Measurement:
        """Not sampled: the meter takes from a `PolledSource` (`take`), energy included."""
        raise SourceUnavailable(f"channel {channel} comes from a remote meter: it is taken, not sampled")

    def grid_frequency(self, at: float) -> float:
        """The frequency of channel 0's meter, else of any meter that measures one."""
        route = self._routes.get(0)
        first = route[0].frequency if route is not None else None
        if first is not None:
            return first
        others = (p.frequency for p in self.pollers)
        return next((f for f in others if f is not None), DEFAULT_FREQUENCY)
