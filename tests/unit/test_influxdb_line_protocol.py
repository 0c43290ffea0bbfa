"""Line protocol as the reference writes it (integrations.md 3.3), with names escaped properly.

The escaping itself is checked against a real influxd in tests/integration/test_influxdb.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from homemeter.config.roles import Phase, Role
from homemeter.integrations.influxdb.line_protocol import (
    channel_lines,
    escape_key,
    escape_measurement,
    fixed,
    fresh_lines,
    string_field,
)
from homemeter.meter.quantities import QUANTITIES
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot

DEVICE = "a1b2c3d4e5f6"


def reading(
    index: int = 0, label: str = "Channel_0", role: Role = Role.GRID, ms: int | None = 0
) -> ChannelReading:
    # The reference example's channel 0 (integrations.md 3.3).
    return ChannelReading(
        index=index, label=label, phase=Phase.L1, group_label="g", role=role, active=True,
        voltage=231.4, current=5.425, active_power=1254.6, apparent_power=1255.4, reactive_power=45.2,
        power_factor=0.999, active_energy_imported=12345.6, active_energy_exported=0.0,
        reactive_energy_imported=456.7, reactive_energy_exported=0.0, apparent_energy=13001.2,
        last_reading_ms=1767225600123 if ms == 0 else ms,
    )  # fmt: skip


def fields(line: str) -> dict[str, str]:
    return dict(f.split("=") for f in line.split(" ")[1].split(","))


def test_the_reference_example_lines() -> None:
    instant, energy = channel_lines("meter", reading(), DEVICE)
    key = "meter,channel=0,label=Channel_0,role=grid,device_id=a1b2c3d4e5f6"
    ns = "1767225600123000000"
    assert instant.startswith(key + " ") and instant.endswith(" " + ns)
    assert energy == (
        f"{key} active_energy_imported=12345.6,active_energy_exported=0.0,reactive_energy_imported=456.7,"
        f"reactive_energy_exported=0.0,apparent_energy=13001.2 {ns}"
    )
    # Same fields and values as the reference; field order has no meaning in line protocol.
    assert fields(instant) == {"voltage": "231.4", "current": "5.425", "active_power": "1254.6",
                               "reactive_power": "45.2", "apparent_power": "1255.4",
                               "power_factor": "0.999"}  # fmt: skip


def test_every_quantity_is_a_field_with_its_decimals() -> None:
    instant, energy = channel_lines("meter", reading(), DEVICE)
    written = fields(instant) | fields(energy)
    assert list(written) == [q.attr for q in QUANTITIES]  # the one table, nothing else
    for q in QUANTITIES:
        frac = written[q.attr].partition(".")[2]
        assert len(frac) == q.decimals and "i" not in written[q.attr], q.attr


@pytest.mark.parametrize(("value", "decimals", "text"), [
    (0.0, 1, "0.0"), (0.0, 3, "0.000"), (-412.5, 1, "-412.5"), (2.25, 1, "2.3"), (-2.25, 1, "-2.3"),
    (0.0005, 3, "0.001"), (-0.04, 1, "0.0"), (float("nan"), 1, "0.0"), (1.5e7, 1, "15000000.0"),
])  # fmt: skip
def test_fixed_point_rounds_half_away_from_zero(value: float, decimals: int, text: str) -> None:
    assert fixed(value, decimals) == text


@pytest.mark.parametrize(("raw", "escaped"), [
    ("Kitchen Oven", r"Kitchen\ Oven"),
    ("a,b=c", r"a\,b\=c"),
    ('say "hi"', r'say\ "hi"'),  # quotes are literal in tags
    (r"C:\temp", r"C:\temp"),  # backslashes are literal...
    ("a\\ b", "a\\\\ b"),  # ...also before an escaped character
    ("Küche ☀", "Küche\\ ☀"),
    ("ends\\", "ends\\\\ "),  # it would escape the separator: it escapes a space instead
    ("two\nlines", r"two\ lines"),
])  # fmt: skip
def test_tag_values_and_keys(raw: str, escaped: str) -> None:
    assert escape_key(raw) == escaped


def test_measurement_escapes_space_and_comma_only() -> None:
    assert escape_measurement("home meter,a=b") == r"home\ meter\,a=b"


def test_string_field_escapes_quotes_and_backslashes() -> None:
    assert string_field('a "b" \\c') == r'"a \"b\" \\c"'


def test_label_and_measurement_are_escaped_in_the_line() -> None:
    instant, _ = channel_lines("my meter", reading(label="Oven, main=1"), DEVICE)
    assert instant.startswith(r"my\ meter,channel=0,label=Oven\,\ main\=1,role=grid,device_id=")


def snapshot(*channels: ChannelReading) -> MeterSnapshot:
    return MeterSnapshot(1, 1767225600.5, 0, 230.0, 50.0, channels, ())


def test_fresh_lines_skip_channels_not_read_since_their_last_point() -> None:
    written: dict[int, int] = {}
    a, b = reading(0, ms=1767225600000), reading(3, "Oven", Role.LOAD, ms=1767225600100)
    first = fresh_lines("meter", snapshot(a, b), DEVICE, written)
    assert [line.split(",")[1] for line in first] == ["channel=0"] * 2 + ["channel=3"] * 2
    # Channel 0 read again, channel 3 not: only channel 0 (the device would repeat channel 3).
    again = fresh_lines("meter", snapshot(replace(a, last_reading_ms=1767225601000), b), DEVICE, written)
    assert [line.split(",")[1] for line in again] == ["channel=0"] * 2
    assert written == {0: 1767225601000, 3: 1767225600100}


def test_channels_without_a_valid_reading_are_left_out() -> None:
    never = reading(1, ms=None)
    before_ntp = reading(2, ms=5_000)  # 1970: the device's "no valid time"
    inactive = replace(reading(4), active=False)
    assert fresh_lines("meter", snapshot(never, before_ntp, inactive), DEVICE, {}) == []
