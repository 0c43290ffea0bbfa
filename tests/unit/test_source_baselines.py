"""Remote counter baselines kept across a restart: saved with the totals, so a crash at any moment
(between a poll, the meter's take and a save) never counts a remote meter's energy twice or loses it.

A scripted remote meter, the real meter, `RemoteSources` and the real `EnergyStore`: a save here is
what the energy persister does (the snapshot's totals and the baselines in one step), a crash is
dropping everything in memory and starting again from the database.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homemeter.config.sources import ChannelSource, MeterSource, SourceKind, SourcesConfig
from homemeter.errors import SourceUnavailable
from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.snapshot import EnergyTotals
from homemeter.meter.source import BaselineSource
from homemeter.meter.sources.remote import Poll, Poller, RemoteChannel, RemoteSources
from homemeter.store.energy_store import EnergyStore, read_baselines
from tests.unit.test_accounting import START, channels
from tests.unit.test_remote_sources import M

METER = MeterSource(name="grid", kind=SourceKind.ENERGYME, url="http://127.0.0.1:9")
SOURCES = SourcesConfig(meters=(METER,), channels=(ChannelSource(channel=0, source="grid", sourceChannel=0),))
FIRST = 500_000.0  # Wh on the remote meter when homemeter first reads it


@dataclass
class Device:
    """The remote meter's import counter, and the clocks its poller reads."""

    counter: float = FIRST
    up: bool = True
    monotonic: float = 0.0
    wall: float = START


class ScriptedPoller(Poller):
    def __init__(self, device: Device) -> None:
        super().__init__(METER, clock=lambda: device.monotonic, wall=lambda: device.wall)
        self.device = device

    async def fetch(self) -> Poll:
        if not self.device.up:
            raise SourceUnavailable("cut")
        return Poll({0: RemoteChannel(M, None, (self.device.counter, 0.0, None, None, None))})

    async def close(self) -> None:
        pass


class Homemeter:
    """One run: the meter on the stored totals, the poller continued from the stored baselines."""

    def __init__(self, store: EnergyStore, device: Device) -> None:
        self.store = store
        totals = store.open()
        self.remote = RemoteSources(lambda n: tuple(channels(n)))
        self.poller = ScriptedPoller(device)
        self.remote.attach(SOURCES, (self.poller,))
        self.remote.restore(store._with_lock(read_baselines, ()))
        self.meter = Meter(self.remote, channels(1), totals, clock=MeterClock(start=START))
        self.loop = asyncio.new_event_loop()

    def poll(self) -> None:
        """A minute after the previous one: any step the script makes is plausible, not a jump."""
        self.poll_with(self.poller)

    def poll_with(self, poller: ScriptedPoller) -> None:
        poller.device.monotonic += 60.0
        poller.device.wall += 60.0
        self.loop.run_until_complete(poller.poll_once())

    def step(self) -> None:
        self.meter.simulate(0.2)

    def save(self) -> None:
        """What the energy persister does: the latest totals and the matching baselines."""
        totals = {c.index: c.energy for c in self.meter.latest.channels}
        self.store.save(totals, self.remote.counter_baselines())

    @property
    def imported(self) -> float:
        return self.meter.latest.channels[0].active_energy_imported

    def crash(self) -> None:
        """kill -9: nothing more is written; the database keeps its last committed save."""
        self.loop.close()
        self.store.close()


def test_remote_sources_give_the_persister_their_baselines() -> None:
    assert isinstance(RemoteSources(lambda n: ()), BaselineSource)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("count"), st.floats(min_value=0.0, max_value=5.0)),
        st.tuples(st.sampled_from(["poll", "step", "save", "cut", "mend"]), st.just(0.0)),
    ),
    max_size=40,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, downtime=st.floats(min_value=0.0, max_value=50.0), meanwhile=st.floats(0.0, 400.0))
def test_a_crash_at_any_moment_neither_loses_nor_doubles_remote_energy(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, float]], downtime: float, meanwhile: float
) -> None:
    device = Device()
    home = Homemeter(EnergyStore(tmp_path_factory.mktemp("db")), device)
    home.poll()  # the first reading is the baseline: homemeter counts from FIRST
    home.step()
    for op, amount in ops:
        if op == "count":
            device.counter += amount
        elif op in ("cut", "mend"):
            device.up = op == "mend"
        else:
            getattr(home, op)()
    seen = home.imported
    saved = home.store._with_lock(read_baselines, ())
    home.crash()

    # Stopped for `downtime` seconds while the meter counted on; then it is reachable again.
    device.counter += meanwhile
    device.wall += downtime
    device.up = True
    again = Homemeter(EnergyStore(home.store.path.parent), device)
    assert again.imported <= seen  # the last save, at most what was shown
    again.poll()
    again.step()
    if saved:
        assert again.imported == pytest.approx(device.counter - FIRST, abs=1e-6)
        assert again.remote.counter_baselines()[0].counters[0] == device.counter
    else:  # never saved (a first run killed within its first save interval): a baseline again
        assert again.imported == 0.0


def test_a_save_between_a_poll_and_the_meters_take_keeps_the_polled_energy(tmp_path: Path) -> None:
    """The poller has read 5 Wh more, the meter has not taken them yet: the saved baseline is the one
    the saved totals include, so the 5 Wh arrive after the restart (a poll-time baseline loses them)."""
    device = Device()
    home = Homemeter(EnergyStore(tmp_path), device)
    home.poll()
    home.step()
    device.counter += 5.0
    home.poll()
    home.save()
    assert home.imported == 0.0
    home.crash()
    again = Homemeter(EnergyStore(tmp_path), device)
    again.poll()
    again.step()
    assert again.imported == pytest.approx(5.0)


def test_a_meter_reset_while_homemeter_was_stopped_credits_only_its_new_count(tmp_path: Path) -> None:
    device = Device()
    home = Homemeter(EnergyStore(tmp_path), device)
    home.poll()
    home.step()
    device.counter += 40.0
    home.poll()
    home.step()
    home.save()
    home.crash()
    # The meter was reset (or replaced by a new one) and counted 3 Wh since, 10 minutes later.
    device.counter, device.wall = 3.0, device.wall + 600.0
    again = Homemeter(EnergyStore(tmp_path), device)
    again.poll()
    again.step()
    assert again.imported == pytest.approx(43.0)
    jumps = [(j.jump.before, j.jump.after, j.jump.credited) for j in again.poller.jumps]
    assert jumps == [(500_040.0, 3.0, 3.0)]


def test_a_live_configuration_change_keeps_the_baselines_of_unchanged_channels(tmp_path: Path) -> None:
    """What the sources component does on a change: new pollers continue from the old ones' baselines,
    so what the old poller read but the meter had not taken yet arrives once, from the new one."""
    device = Device()
    home = Homemeter(EnergyStore(tmp_path), device)
    home.poll()
    home.step()
    device.counter += 6.0
    home.poll()  # read, not taken: the old poller is dropped with it
    carried = home.remote.counter_baselines()
    fresh = ScriptedPoller(device)
    home.remote.attach(SOURCES, (fresh,))
    assert home.remote.restore(carried) == 1
    device.counter += 1.0
    home.poll_with(fresh)
    home.step()
    assert home.imported == pytest.approx(7.0)
    home.crash()


def _reopened_after_one_save(tmp_path: Path, device: Device) -> EnergyStore:
    """The store as a restart finds it after one poll, one take and one save of `device`."""
    home = Homemeter(EnergyStore(tmp_path), device)
    home.poll()
    home.step()
    home.save()
    home.crash()
    store = EnergyStore(tmp_path)
    store.open()
    return store


def test_a_channel_now_showing_another_meter_starts_from_a_baseline(tmp_path: Path) -> None:
    device = Device()
    store = _reopened_after_one_save(tmp_path, device)
    other = MeterSource(name="grid", kind=SourceKind.ENERGYME, url="http://127.0.0.1:10")
    remote = RemoteSources(lambda n: ())
    poller = ScriptedPoller(device)
    poller.config = other
    remote.attach(SourcesConfig(meters=(other,), channels=SOURCES.channels), (poller,))
    assert remote.restore(store._with_lock(read_baselines, ())) == 0  # another URL: not its counters
    store.close()


def test_an_import_that_raises_totals_forgets_the_baselines(tmp_path: Path) -> None:
    device = Device()
    store = _reopened_after_one_save(tmp_path, device)
    store.forget_baselines([0])
    store.save({0: EnergyTotals(device.counter)})
    assert store._with_lock(read_baselines, ()) == ()
    store.close()
