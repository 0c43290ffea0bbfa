"""InfluxDB line protocol: the two lines per channel of the device (reference integrations.md 3.3).

`<measurement>,channel=<c>,label=<l>,role=<r>,device_id=<id> <fields> <ns>`: an instant line (voltage,
current, powers, power factor) then an energy line (the five counters). Fields come from
`QUANTITIES` (name = snapshot attribute, fixed-point with the device's decimals, no `i` suffix); the
time is the channel's reading time in ms followed by `000000` (nanoseconds), the same on both lines.
Fields follow the table's order (the device writes reactive before apparent power; field order has no
meaning in line protocol).

Unlike the device (which replaces space, comma, `=` and `:` in labels by `_` and writes the measurement
raw), names are escaped, so a label reads back exactly as configured, unicode and backslashes
included. InfluxDB 1.x and 2.x keep a backslash literal unless it escapes the next character, and
take any character after a backslash as escaped: so a name ending in a backslash cannot be written
as such; it is written with an (escaped) space after it. A line break becomes a space. (Measurement
names lose a backslash before an escaped character in 1.x: the settings refuse backslashes there.)
"""

from __future__ import annotations

from homemeter.meter.quantities import QUANTITIES, Kind
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot, round_half_away

# (field key, snapshot attribute, decimals) of each line, in the table's order.
_INSTANT = tuple((q.attr, q.attr, q.decimals) for q in QUANTITIES if q.kind is Kind.INSTANT)
_ENERGY = tuple((q.attr, q.attr, q.decimals) for q in QUANTITIES if q.kind is Kind.ENERGY)

_TAG_SPECIALS = str.maketrans({" ": "\\ ", ",": "\\,", "=": "\\=", "\n": "\\ ", "\r": "\\ "})
_NAME_SPECIALS = str.maketrans({" ": "\\ ", ",": "\\,", "\n": "\\ ", "\r": "\\ "})
_STRING_SPECIALS = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _closed(escaped: str) -> str:
    # A final backslash would escape the separator after it: give it an escaped space to escape.
    return escaped + "\\ " if escaped.endswith("\\") else escaped


def escape_measurement(name: str) -> str:
    """A measurement name: spaces and commas escaped (`=` needs no escape there)."""
    return _closed(name.translate(_NAME_SPECIALS))


def escape_key(text: str) -> str:
    """A tag key, tag value or field key: spaces, commas and equals signs escaped."""
    return _closed(text.translate(_TAG_SPECIALS))


def string_field(text: str) -> str:
    """A string field value: quoted, with double quotes and backslashes escaped."""
    return '"' + text.translate(_STRING_SPECIALS) + '"'


def fixed(value: float, decimals: int) -> str:
    """A float field as the device writes it: rounded half away from zero, exactly `decimals` digits."""
    return f"{round_half_away(value, decimals):.{decimals}f}"


def _fields(reading: ChannelReading, spec: tuple[tuple[str, str, int], ...]) -> str:
    return ",".join(f"{key}={fixed(getattr(reading, attr), d)}" for key, attr, d in spec)


def series_key(measurement: str, reading: ChannelReading, device_id: str) -> str:
    """Measurement and the four tags, in the device's order (channel, label, role, device_id)."""
    return (
        f"{escape_measurement(measurement)},channel={reading.index},label={escape_key(reading.label)},"
        f"role={escape_key(reading.role.value)},device_id={escape_key(device_id)}"
    )


def channel_lines(measurement: str, reading: ChannelReading, device_id: str) -> tuple[str, str]:
    """The instant line and the energy line of one channel, stamped with its reading time."""
    key = series_key(measurement, reading, device_id)
    ns = f"{reading.last_reading_ms}000000"
    return f"{key} {_fields(reading, _INSTANT)} {ns}", f"{key} {_fields(reading, _ENERGY)} {ns}"


def fresh_lines(
    measurement: str, snapshot: MeterSnapshot, device_id: str, written: dict[int, int]
) -> list[str]:
    """Two lines per channel read since its last point, ascending index; `written` (index -> reading ms)
    is updated. A channel not re-read is skipped, where the device would write it again unchanged."""
    lines: list[str] = []
    for reading in snapshot.with_readings():
        ms = reading.last_reading_ms
        if ms is not None and ms > written.get(reading.index, 0):
            written[reading.index] = ms
            lines.extend(channel_lines(measurement, reading, device_id))
    return lines
