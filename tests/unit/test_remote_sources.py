"""Remote meters without a network: counter following, register maps, the meter's polled path, config."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Role
from homemeter.config.sources import ChannelSource, MeterSource, SourceKind, SourcesConfig, single_meter
from homemeter.errors import ConfigError, SourceUnavailable
from homemeter.meter.clock import MeterClock
from homemeter.meter.reading import process_remote
from homemeter.meter.sampler import Meter
from homemeter.meter.snapshot import EnergyTotals
from homemeter.meter.source import Measurement, RemoteReading
from homemeter.meter.sources.counters import MAX_HOLD_S, CounterFollower
from homemeter.meter.sources.meter_model import RegisterPlan, builtin_models, load_model
from tests.unit.test_accounting import START, channels

M = Measurement(230.0, 4.0, 900.0, 100.0, 920.0)  # importing, inductive
IDLE = Measurement(230.0, 0.0, 0.0, 0.0, 0.0)


def counters(imported: float, exported: float = 0.0) -> tuple[float | None, ...]:
    return (imported, exported, 0.0, 0.0, None)


# ----------------------------------------------------------------- counters as deltas
def test_first_reading_is_the_baseline_then_deltas_follow() -> None:
    follower = CounterFollower()
    assert follower.follow(counters(5_000.0), M, None)[0] == EnergyTotals()
    delta, jumps = follower.follow(counters(5_000.25), M, 1.0)
    assert delta.active_energy_imported == pytest.approx(0.25) and jumps == []
    # No apparent-energy counter: integrated from S over the elapsed second.
    assert delta.apparent_energy == pytest.approx(920.0 / 3600.0)


def test_a_reset_to_zero_credits_what_was_counted_since() -> None:
    follower = CounterFollower()
    follower.follow(counters(5_000.0), M, None)
    delta, jumps = follower.follow(counters(0.3), M, 2.0)
    assert delta.active_energy_imported == pytest.approx(0.3)
    assert [(j.quantity, j.before, j.after, j.credited) for j in jumps] == [
        ("activeEnergyImported", 5_000.0, 0.3, 0.3)
    ]
    assert follower.follow(counters(0.5), M, 1.0)[0].active_energy_imported == pytest.approx(0.2)


def test_an_older_save_restored_or_a_replaced_meter_credits_nothing() -> None:
    follower = CounterFollower()
    follower.follow(counters(50_000.0), M, None)
    delta, jumps = follower.follow(counters(49_920.0), M, 30.0)  # the device lost 80 Wh at a power cut
    assert delta.active_energy_imported == 0.0 and len(jumps) == 1
    delta, jumps = follower.follow(counters(900_000.0), M, 1.0)  # a meter with its own history
    assert delta.active_energy_imported == 0.0 and jumps[0].after == 900_000.0
    assert follower.follow(counters(900_001.0), M, 1.0)[0].active_energy_imported == pytest.approx(1.0)


def test_an_outage_is_credited_from_the_counters_but_not_invented_for_powers() -> None:
    follower = CounterFollower()
    follower.follow(counters(1_000.0), M, None)
    delta, jumps = follower.follow(counters(1_900.0), M, 3600.0)  # one hour away: 900 Wh at 900 W
    assert delta.active_energy_imported == pytest.approx(900.0) and jumps == []
    assert delta.apparent_energy == pytest.approx(920.0 * MAX_HOLD_S / 3600.0)


@given(st.lists(st.floats(min_value=0.0, max_value=1e7, allow_nan=False), min_size=1, max_size=30))
def test_deltas_are_never_negative(values: list[float]) -> None:
    follower = CounterFollower()
    for i, value in enumerate(values):
        delta, _ = follower.follow(counters(value, value / 2), IDLE, None if i == 0 else 1.0)
        assert all(x >= 0.0 for x in delta.as_tuple())


# ----------------------------------------------------------------- what the meter applies
def test_remote_values_keep_their_sign_and_pf_takes_homemeters_convention() -> None:
    grid = ChannelConfig.default(0)
    # An Eastron PF is signed by the current's direction; homemeter signs PF by sign(P) * sign(Q).
    r = process_remote(Measurement(230.0, 5.0, -800.0, 120.0, 810.0), 0.988, grid)
    assert r is not None and (r.active_power, r.power_factor) == (-800.0, -0.988)
    r = process_remote(Measurement(230.0, 5.0, 1200.0, -130.0, 1207.0), 0.994, grid)
    assert r is not None and r.power_factor == -0.994
    reversed_grid = grid.model_copy(update={"reverse": True})
    r = process_remote(Measurement(230.0, 5.0, -800.0, 120.0, 810.0), None, reversed_grid)
    assert r is not None and r.active_power == 800.0 and r.power_factor == pytest.approx(-800.0 / 810.0)
    # A load never runs backwards: zeroed as the device zeroes it, the voltage kept.
    load = ChannelConfig.default(1)
    r = process_remote(Measurement(231.0, 1.0, -50.0, 0.0, 60.0), 0.8, load)
    assert r is not None and (r.voltage, r.active_power, r.current) == (231.0, 0.0, 0.0)
    assert process_remote(Measurement(float("nan"), 1.0, 1.0, 0.0, 1.0), None, load) is None


@dataclass
class FakeRemote:
    """A PolledSource whose next take per channel a test sets; `down` makes every take fail."""

    readings: dict[int, RemoteReading] = field(default_factory=dict)
    down: bool = False
    blocking = False

    def factory_channels(self, count: int) -> tuple[ChannelConfig, ...]:
        return tuple(ChannelConfig.default(i) for i in range(count))

    def select(self, channel: int) -> None:
        raise AssertionError("a polled source is never multiplexed")

    def advance(self, at: float) -> None:
        pass

    def measure(self, channel: int, at: float) -> Measurement:
        raise AssertionError("a polled source is taken from, not sampled")

    def take(self, channel: int) -> RemoteReading | None:
        if self.down:
            raise SourceUnavailable("unreachable")
        return self.readings.pop(channel, None)

    def grid_frequency(self, at: float) -> float:
        return 50.01


def test_the_meter_credits_remote_energy_and_shows_no_values_while_unreachable() -> None:
    remote = FakeRemote()
    configs = channels(2)
    configs[1] = configs[1].model_copy(update={"reverse": True, "role": Role.GRID, "groupLabel": "Group 0"})
    meter = Meter(remote, configs, {0: EnergyTotals(100.0)}, clock=MeterClock(start=START))
    energy = EnergyTotals(1.5, 0.5, 0.25, 0.0, 2.0)
    remote.readings = {0: RemoteReading(M, 0.98, energy), 1: RemoteReading(M, 0.98, energy)}
    meter.simulate(0.2)
    ch0, ch1 = meter.latest.channels
    assert ch0.active_energy_imported == 101.5 and ch0.active_power == 900.0
    assert ch0.energy.as_tuple()[1:] == (0.5, 0.25, 0.0, 2.0)
    # Reversed: import and export swap, as the power's sign does.
    assert (ch1.active_energy_imported, ch1.active_energy_exported, ch1.active_power) == (0.5, 1.5, -900.0)
    meter.simulate(5.0)  # nothing new: the values stay, no energy is invented
    assert meter.latest.channels[0].active_energy_imported == 101.5
    assert [c.index for c in meter.latest.with_readings()] == [0, 1]

    remote.down = True
    meter.simulate(0.2)
    assert list(meter.latest.with_readings()) == []  # no values, not zeros
    assert meter.latest.channels[0].active_energy_imported == 101.5  # the totals stay
    remote.down = False
    remote.readings = {0: RemoteReading(M, 0.98, EnergyTotals(3.0))}
    meter.simulate(0.2)
    assert [c.index for c in meter.latest.with_readings()] == [0]
    assert meter.latest.channels[0].active_energy_imported == 104.5


# ----------------------------------------------------------------- register maps
def test_builtin_models_have_their_channels_and_few_requests() -> None:
    assert {"sdm120", "sdm630"} <= set(builtin_models())
    sdm630, sdm120 = load_model("sdm630"), load_model("sdm120")
    assert [(c.label, int(c.phase)) for c in sdm630.channels] == [("L1", 1), ("L2", 2), ("L3", 3)]
    assert len(sdm120.channels) == 1
    for model in (sdm630, sdm120):
        plan = RegisterPlan(model)
        assert all(b.count <= model.maxRegisters for b in plan.blocks)


def test_word_order_types_and_scales_of_a_users_model(tmp_path: Path) -> None:
    doc = {
        "model": "mine",
        "registers": "holding",
        "wordOrder": "little",
        "frequency": {"address": 10, "type": "uint16", "scale": 0.01},
        "channels": [
            {
                "label": "Heat pump",
                "values": {
                    "voltage": {"address": "0x0000", "type": "uint16", "scale": 0.1},
                    "current": {"address": 1, "type": "int16", "scale": 0.001},
                    "activePower": {"address": 2, "type": "int32"},
                    "activeEnergyImported": {"address": 4},
                },
            }
        ],
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc))
    plan = RegisterPlan(load_model(path=path))
    energy = struct.unpack(">2H", struct.pack(">f", 1234.5))
    power = struct.unpack(">2H", struct.pack(">i", -1500))
    # Little word order: the low word of each 32-bit value comes first.
    words = [2301, 5250, power[1], power[0], energy[1], energy[0], 0, 0, 0, 0, 4998]
    (channel,), frequency = plan.decode([words])
    m = channel.measurement
    assert (m.voltage, m.current, m.active_power) == (pytest.approx(230.1), 5.25, -1500.0)
    assert channel.counters[0] == 1234.5 and channel.counters[1:] == (None,) * 4
    assert m.apparent_power == pytest.approx(230.1 * 5.25) and channel.power_factor is None
    assert frequency == pytest.approx(49.98)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"power": {"address": 0}}, r"channels.0: .*unknown quantities \['power'\]; known: voltage"),
        ({"voltage": {"address": 3}}, r"channels\[0\].current overlaps channels\[0\].voltage at register 3"),
    ],
)
def test_a_bad_model_file_says_what_is_wrong(tmp_path: Path, change: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "voltage": {"address": 0},
        "current": {"address": 2},
        "activePower": {"address": 4},
    }
    values.update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"model": "bad", "channels": [{"label": "x", "values": values}]}))
    with pytest.raises(ConfigError, match=message):
        load_model(path=path)
    with pytest.raises(ConfigError, match="unknown meter model 'sdm999': choose"):
        load_model("sdm999")


# ----------------------------------------------------------------- configuration
def test_sources_configuration_is_checked_whole() -> None:
    house = MeterSource(name="house", kind=SourceKind.ENERGYME, url="http://192.0.2.5")
    with pytest.raises(ValidationError, match="unknown meter 'grid'"):
        SourcesConfig(meters=(house,), channels=(ChannelSource(channel=0, source="grid", sourceChannel=0),))
    twice = tuple(ChannelSource(channel=k, source="house", sourceChannel=1) for k in (0, 1))
    with pytest.raises(ValidationError, match="shown by both channel 0 and channel 1"):
        SourcesConfig(meters=(house,), channels=twice)
    with pytest.raises(ValidationError, match="modbus://HOST"):
        MeterSource(name="g", kind=SourceKind.MODBUS, url="http://x", model="sdm630")
    with pytest.raises(ValidationError, match="no user or password in the URL"):
        MeterSource(name="g", kind=SourceKind.ENERGYME, url="http://admin:secret@x")
    with pytest.raises(ValidationError, match="unit id"):
        MeterSource(name="g", kind=SourceKind.MODBUS, url="modbus://x:502/300", model="sdm630")


def test_the_one_meter_shorthand_takes_the_configured_password() -> None:
    stored = MeterSource(
        name="house", kind=SourceKind.ENERGYME, url="http://192.0.2.5/", password=SecretStr("kept"), user="me"
    )
    configured = SourcesConfig(meters=(stored,))
    one = single_meter({"kind": "energyme", "url": "http://192.0.2.5", "password": None}, 17, configured)
    meter = one.meters[0]
    assert (meter.name, meter.user, meter.password.get_secret_value()) == ("energyme", "me", "kept")
    assert [(c.channel, c.sourceChannel) for c in one.channels] == [(k, k) for k in range(17)]
    given_pw = single_meter({"kind": "energyme", "url": "http://192.0.2.5", "password": "env"}, 2, configured)
    assert given_pw.meters[0].password.get_secret_value() == "env"
    # Masked everywhere but the configuration file.
    assert "kept" not in configured.model_dump_json()


def test_channels_may_share_a_register_read_once(tmp_path: Path) -> None:
    def values(at: int) -> dict[str, object]:
        return {"voltage": {"address": 0}, "current": {"address": at}, "activePower": {"address": at + 2}}

    path = tmp_path / "two.json"
    doc = {"model": "two", "channels": [{"label": k, "values": values(at)} for k, at in (("a", 2), ("b", 6))]}
    path.write_text(json.dumps(doc))
    plan = RegisterPlan(load_model(path=path))
    assert [(b.address, b.count) for b in plan.blocks] == [(0, 10)]
    words = list(struct.unpack(">10H", struct.pack(">5f", 230.0, 1.0, 200.0, 2.0, 400.0)))
    a, b = plan.decode([words])[0]
    assert (a.measurement.voltage, b.measurement.voltage) == (230.0, 230.0)
    assert (a.measurement.active_power, b.measurement.active_power) == (200.0, 400.0)
