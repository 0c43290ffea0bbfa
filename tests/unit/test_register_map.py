"""Register map and encoding against the reference (integrations.md 1.4, 1.5).

The expected address set and the worked examples are written out here from the reference, not
derived from `register_map()`, so a wrong row in the map fails a test.
"""

from __future__ import annotations

import csv
import io
import struct
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homemeter.config.roles import AGGREGATE_ROLES, Phase, Role
from homemeter.integrations.modbus.image import RegisterImage, RegisterLayout
from homemeter.integrations.modbus.register_map import (
    CSV_COLUMNS,
    register_map,
    register_map_csv,
    register_map_json,
)
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot, RoleAggregate


def reference_valid_addresses(channel_count: int) -> set[int]:
    """Reference 1.5 "Complete valid address set", transcribed."""
    valid = set(range(0, 8)) | set(range(100, 104))
    for base in (200, 300, 400, 500, 600):
        valid |= set(range(base, base + 18))
    for c in range(channel_count):
        valid |= set(range(1000 + 100 * c, 1000 + 100 * c + 20))
    return valid


def channel(index: int, role: Role = Role.LOAD, **values: float) -> ChannelReading:
    fields: dict[str, float] = dict.fromkeys(
        (
            "voltage",
            "current",
            "active_power",
            "apparent_power",
            "reactive_power",
            "power_factor",
            "active_energy_imported",
            "active_energy_exported",
            "reactive_energy_imported",
            "reactive_energy_exported",
            "apparent_energy",
        ),
        0.0,
    )
    fields.update(values)
    return ChannelReading(
        index=index,
        label=f"Channel {index}",
        phase=Phase.L1,
        group_label="",
        role=role,
        active=True,
        last_reading_ms=1_767_225_600_000,
        **fields,
    )


def snapshot(channels: tuple[ChannelReading, ...], **overrides: object) -> MeterSnapshot:
    snap = MeterSnapshot(
        seq=1,
        taken_at=1_767_225_600.0,
        uptime_ms=123_456,
        voltage=230.1,
        grid_frequency=50.012,
        channels=channels,
        aggregates=tuple(RoleAggregate.of(role, channels) for role in AGGREGATE_ROLES),
    )
    return replace(snap, **overrides)  # type: ignore[arg-type]


def words(image: RegisterImage, start: int, count: int) -> list[int]:
    return list(image.words(start, count))


@pytest.mark.parametrize("channel_count", [0, 1, 16, 17])
def test_map_covers_exactly_the_reference_address_set(channel_count: int) -> None:
    regs = register_map(channel_count)
    covered: list[int] = []
    for reg in regs:
        covered.extend(range(reg.address, reg.end))
    assert len(covered) == len(set(covered)), "two rows overlap"
    assert set(covered) == reference_valid_addresses(channel_count)
    assert [r.address for r in regs] == sorted(r.address for r in regs)
    assert len({r.name for r in regs}) == len(regs)


def test_block_layout_matches_reference_offsets() -> None:
    by_address = {r.address: r for r in register_map(17)}
    assert by_address[0].dtype == by_address[4].dtype == "uint64"
    assert (by_address[0].unit, by_address[4].unit) == ("s", "ms")
    assert (by_address[100].name, by_address[100].decimals) == ("voltage", 1)
    assert (by_address[102].name, by_address[102].decimals) == ("grid_frequency", 3)
    aggregate_order = [
        "active_power",
        "reactive_power",
        "apparent_power",
        "power_factor",
        "active_energy_imported",
        "active_energy_exported",
        "reactive_energy_imported",
        "reactive_energy_exported",
        "apparent_energy",
    ]
    for base, role in zip(
        (200, 300, 400, 500, 600), ("grid", "load", "pv", "battery", "inverter"), strict=True
    ):
        for i, attr in enumerate(aggregate_order):
            reg = by_address[base + 2 * i]
            assert reg.name == f"{role}_{attr}"
            assert reg.decimals == (3 if attr == "power_factor" else 1)
    channel_order = ["current", *aggregate_order]  # reference: +0 current, then as the roles
    for c in (0, 16):
        for i, attr in enumerate(channel_order):
            reg = by_address[1000 + 100 * c + 2 * i]
            assert reg.name == f"channel_{c}_{attr}"
            assert reg.decimals == (3 if attr in ("current", "power_factor") else 1)
    assert by_address[1000].unit == "A" and by_address[1004].unit == "VAR"


def test_worked_examples_from_reference() -> None:
    snap = snapshot(
        (
            channel(0, Role.GRID, active_power=-412.5, apparent_power=500.0, power_factor=0.999),
            channel(1, Role.LOAD, active_power=1254.6, apparent_power=1300.0),
        )
    )
    image = RegisterImage.build(snap, register_map(2))
    assert words(image, 0, 4) == [0x0000, 0x0000, 0x6955, 0xB900]
    assert words(image, 100, 2) == [0x4366, 0x199A]
    assert words(image, 102, 2) == [0x4248, 0x0C4A]
    assert words(image, 200, 2) == [0xC3CE, 0x4000]  # grid active power
    assert words(image, 1002, 2) == [0xC3CE, 0x4000]  # channel 0 active power
    assert words(image, 1102, 2) == [0x449C, 0xD333]  # channel 1 active power 1254.6 W
    assert words(image, 1008, 2) == [0x3F7F, 0xBE77]  # channel 0 PF 0.999
    # Request/response example: start 100, quantity 4 -> 43 66 19 9A 42 48 0C 4A
    assert image.read(100, 4) == bytes.fromhex("4366199A42480C4A")
    assert not image.is_valid(104, 1)


def test_uint64_is_most_significant_word_first() -> None:
    snap = snapshot((channel(0),), uptime_ms=0x0001_0002_0003_0004)
    image = RegisterImage.build(snap, register_map(1))
    assert words(image, 4, 4) == [1, 2, 3, 4]


def test_rounding_is_half_away_from_zero_before_float32() -> None:
    # 0.25 and -0.25 are exact in binary: banker's rounding would give 0.2 / -0.2.
    snap = snapshot((channel(0, Role.GRID, active_power=0.25, reactive_power=-0.25),))
    image = RegisterImage.build(snap, register_map(1))
    assert image.read(1002, 2) == struct.pack(">f", 0.3)
    assert image.read(1004, 2) == struct.pack(">f", -0.3)
    # Current has 3 decimals: 1.23456 -> 1.235
    snap = snapshot((channel(0, current=1.23456),))
    assert RegisterImage.build(snap, register_map(1)).read(1000, 2) == struct.pack(">f", 1.235)


def test_unencodable_values_do_not_break_the_image() -> None:
    snap = snapshot(
        (channel(0, current=float("nan"), apparent_energy=1e39),),
        uptime_ms=-5,
    )
    image = RegisterImage.build(snap, register_map(1))
    assert image.read(1000, 2) == struct.pack(">f", 0.0)
    assert struct.unpack(">f", image.read(1018, 2))[0] == pytest.approx(3.4028234663852886e38)
    assert words(image, 4, 4) == [0, 0, 0, 0]


NAN = bytes.fromhex("7fc00000")  # float32 quiet NaN, high word first


def test_a_channel_without_a_value_reads_nan_not_zero() -> None:
    """Channel 1 (grid) has no reading (its remote meter unreachable): its measurements, channel 0's
    voltage and frequency when it is channel 0, and its role's powers are NaN; energies stay."""
    missing = replace(
        channel(1, Role.GRID, active_power=0.0, active_energy_imported=1234.5), last_reading_ms=None
    )
    load = channel(2, Role.LOAD, active_power=100.0, apparent_power=120.0)
    idle = replace(channel(3, Role.PV), active=False, last_reading_ms=None)
    snap = snapshot((channel(0, Role.GRID, active_power=50.0), missing, load, idle))
    image = RegisterImage.build(snap, register_map(4))
    for offset in range(0, 10, 2):  # current, P, Q, S, PF
        assert image.read(1100 + offset, 2) == NAN, offset
    assert struct.unpack(">f", image.read(1110, 2))[0] == pytest.approx(1234.5)
    for offset in range(0, 8, 2):  # the grid role's P, Q, S, PF
        assert image.read(200 + offset, 2) == NAN, offset
    assert struct.unpack(">f", image.read(208, 2))[0] == pytest.approx(1234.5)  # its energy stays
    assert struct.unpack(">f", image.read(300, 2))[0] == pytest.approx(100.0)  # other roles unaffected
    assert image.read(1300, 4) == bytes(8)  # an inactive channel is not "missing": as before, zeros
    assert struct.unpack(">ff", image.read(100, 4)) == pytest.approx((230.1, 50.012))

    no_channel_0 = snapshot((replace(snap.channels[0], last_reading_ms=None), *snap.channels[1:]))
    image = RegisterImage.build(no_channel_0, register_map(4))
    assert image.read(100, 4) == NAN + NAN  # voltage and frequency are channel 0's


def test_gaps_are_never_valid_and_image_spans_the_map() -> None:
    layout = RegisterLayout(register_map(16))
    assert layout.size == 2520  # one past channel 15's last register
    assert not layout.is_valid(2519 + 1, 1)
    assert layout.is_valid(2500, 20) and not layout.is_valid(2500, 21)
    assert layout.is_valid(101, 2)  # straddles voltage/frequency: every register is valid
    assert not layout.is_valid(0, 0)


@given(
    channel_count=st.integers(0, 17),
    start=st.integers(0, 65535),
    count=st.integers(1, 130),
)
def test_validity_matches_brute_force(channel_count: int, start: int, count: int) -> None:
    layout = _layouts(channel_count)
    valid = _valid_sets(channel_count)
    expected = all(a in valid for a in range(start, start + count))
    assert layout.is_valid(start, count) is expected


@given(channel_count=st.integers(0, 17), data=st.data())
def test_validity_near_block_edges(channel_count: int, data: st.DataObject) -> None:
    # Uniform starts rarely land near a block; pick starts close to valid addresses.
    valid = sorted(_valid_sets(channel_count))
    start = data.draw(st.sampled_from(valid)) + data.draw(st.integers(-3, 3))
    count = data.draw(st.integers(1, 24))
    start = max(start, 0)
    expected = all(a in set(valid) for a in range(start, start + count))
    assert _layouts(channel_count).is_valid(start, count) is expected


_LAYOUT_CACHE: dict[int, RegisterLayout] = {}
_VALID_CACHE: dict[int, set[int]] = {}


def _layouts(channel_count: int) -> RegisterLayout:
    if channel_count not in _LAYOUT_CACHE:
        _LAYOUT_CACHE[channel_count] = RegisterLayout(register_map(channel_count))
    return _LAYOUT_CACHE[channel_count]


def _valid_sets(channel_count: int) -> set[int]:
    if channel_count not in _VALID_CACHE:
        _VALID_CACHE[channel_count] = reference_valid_addresses(channel_count)
    return _VALID_CACHE[channel_count]


def test_csv_and_json_have_one_row_per_register() -> None:
    regs = register_map(17)
    rows = register_map_json(17)
    assert len(rows) == len(regs) == 4 + 5 * 9 + 17 * 10
    assert [r["address"] for r in rows] == [r.address for r in regs]
    assert all(tuple(r) == CSV_COLUMNS for r in rows)
    text = register_map_csv(17)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == list(CSV_COLUMNS)
    assert len(parsed) == len(regs) + 1
    assert parsed[1][:3] == ["0", "timestamp", "uint64"]
    assert parsed[-1][:2] == ["2618", "channel_16_apparent_energy"]


def test_register_map_rejects_impossible_channel_counts() -> None:
    with pytest.raises(ValueError):
        register_map(-1)
    with pytest.raises(ValueError):
        register_map(18)
