"""Home Assistant MQTT discovery: one device-based message, generated from the quantity table.

Home Assistant's device-based discovery (`<prefix>/device/<object id>/config`) announces the meter as
one device whose components (`cmps`) are a sensor per quantity of every active channel, plus the grid
frequency. Units, device classes and state classes come from `homemeter.meter.quantities` (energies
are `total_increasing`, so the Energy dashboard accepts the active ones; reactive and apparent energy
have no device class because Home Assistant has none for varh/VAh). A component left out of a later
message is not removed by Home Assistant: a deactivated channel's components are sent once as
`{"p": "sensor"}`, which removes them. An empty retained payload removes the whole device.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from homemeter import __version__
from homemeter.config.mqtt import MqttConfig
from homemeter.meter.quantities import GRID_FREQUENCY, QUANTITIES, Quantity
from homemeter.meter.snapshot import MeterSnapshot, round_half_away

#: Home Assistant's `<prefix>/status` birth message: discovery is sent again when it arrives.
HA_ONLINE = b"online"
ONLINE, OFFLINE = b"online", b"offline"  # our availability payloads (Home Assistant's defaults)
REMOVED: dict[str, Any] = {"p": "sensor"}  # a component with only its platform: Home Assistant removes it


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic one publisher uses, derived from its settings and the device id."""

    values: str  # the meter-values array: exactly the configured topic
    availability: str  # `online` / `offline`, retained; `offline` is also the last will
    grid: str  # grid frequency state
    discovery: str  # the device's discovery message
    ha_status: str  # Home Assistant's birth and last-will topic

    @classmethod
    def of(cls, cfg: MqttConfig, device_id: str) -> Topics:
        prefix = cfg.haDiscoveryPrefix.rstrip("/")
        return cls(
            values=cfg.topic,
            availability=f"{cfg.topic}/availability",
            grid=f"{cfg.topic}/grid",
            discovery=f"{prefix}/device/{object_id(device_id)}/config",
            ha_status=f"{prefix}/status",
        )

    def channel(self, index: int) -> str:
        """State topic of one channel: its `data` object, as in the meter-values array."""
        return f"{self.values}/channel/{index}"

    @property
    def channel_wildcard(self) -> str:
        return f"{self.values}/channel/+"

    def channel_index(self, topic: str) -> int | None:
        """The channel of a state topic; None for any other topic."""
        head, _, index = topic.rpartition("/")
        return int(index) if head == f"{self.values}/channel" and index.isdigit() else None


def object_id(device_id: str) -> str:
    """The discovery topic's object id (Home Assistant allows `[a-zA-Z0-9_-]` only)."""
    return "homemeter_" + re.sub(r"[^a-zA-Z0-9_-]", "_", device_id)


def unique_id(device_id: str, index: int | None, q: Quantity) -> str:
    """Stable across restarts, renames and role changes: device id, channel index and quantity."""
    where = "meter" if index is None else f"ch{index}"
    return f"{object_id(device_id)}_{where}_{q.key}"


def _title(key: str) -> str:
    """`activeEnergyImported` -> `Active energy imported` (entity names from the table's keys)."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", key).lower()
    return words[:1].upper() + words[1:]


def _sensor(uid: str, name: str, state_topic: str, q: Quantity) -> dict[str, Any]:
    sensor: dict[str, Any] = {
        "p": "sensor",
        "name": name,
        "unique_id": uid,
        "state_topic": state_topic,
        "value_template": f"{{{{ value_json.{q.key} }}}}",
        "state_class": q.state_class,
        "suggested_display_precision": q.decimals,
    }
    if q.device_class is not None:
        sensor["device_class"] = q.device_class
    if q.ha_unit is not None:
        sensor["unit_of_measurement"] = q.ha_unit
    return sensor


def discovery_message(
    snapshot: MeterSnapshot, topics: Topics, device_id: str, removed: Iterable[int] = ()
) -> bytes:
    """The retained device discovery payload: sensors of active channels, removals of `removed`."""
    components: dict[str, dict[str, Any]] = {}
    for channel in snapshot.channels:
        if not channel.active:
            continue
        for q in QUANTITIES:
            uid = unique_id(device_id, channel.index, q)
            name = f"{channel.label} {_title(q.key).lower()}"
            components[uid] = _sensor(uid, name, topics.channel(channel.index), q)
    for index in removed:
        for q in QUANTITIES:
            components.setdefault(unique_id(device_id, index, q), REMOVED)
    uid = unique_id(device_id, None, GRID_FREQUENCY)
    components[uid] = _sensor(uid, _title(GRID_FREQUENCY.key), topics.grid, GRID_FREQUENCY)
    return orjson.dumps(
        {
            "device": {
                "identifiers": [object_id(device_id)],
                "name": f"homemeter {device_id}",
                "manufacturer": "homemeter",
                "model": "homemeter energy monitor",
                "serial_number": device_id,
                "sw_version": __version__,
            },
            "origin": {"name": "homemeter", "sw_version": __version__},
            "availability_topic": topics.availability,
            "qos": 0,
            "cmps": components,
        }
    )


def grid_state(snapshot: MeterSnapshot) -> dict[str, float]:
    """The grid frequency state object, rounded as the device rounds it."""
    return {GRID_FREQUENCY.key: round_half_away(snapshot.grid_frequency, GRID_FREQUENCY.decimals)}
