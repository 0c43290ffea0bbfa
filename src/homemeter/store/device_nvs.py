"""The EnergyMe-Home device's configuration backup: typed NVS values grouped in namespaces.

The device exports its settings as `{"nvs": {namespace: {key: {"type": ..., "value": ...}}}}`
(reference rest-api.md 3.5). The tables below say which device key holds which homemeter field
(meter.md 1.2, 1.7, 5; integrations.md 2.1, 3.1). Both directions read them: `device_nvs` writes
the device's section of homemeter's own backup, `device_backup.map_backup` reads a device's backup,
so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr, model_validator

from homemeter.config.app import AppConfig
from homemeter.config.roles import Role
from homemeter.config.secrets import REVEAL
from homemeter.logs.control import LEVELS, LevelName
from homemeter.meter.snapshot import EnergyTotals

NvsType = Literal["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "str", "float", "double"]
INT_RANGES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "u8": (0, 2**8 - 1),
        "i8": (-(2**7), 2**7 - 1),
        "u16": (0, 2**16 - 1),
        "i16": (-(2**15), 2**15 - 1),
        "u32": (0, 2**32 - 1),
        "i32": (-(2**31), 2**31 - 1),
        "u64": (0, 2**64 - 1),
        "i64": (-(2**63), 2**63 - 1),
    }
)

#: The device's firmware major version whose NVS layout these tables describe (2.2.1).
DEVICE_MAJOR = 2

#: Never exported by the device, and a restore that contains one is refused (rest-api.md 3.5).
EXCLUDED_NAMESPACES = ("auth_ns", "nvs.net80211", "phy", "factory_ns")

#: The device's log levels; `adv_log_ns` stores their position as i32 (VERBOSE 0 ... FATAL 5).
LOG_LEVELS: tuple[LevelName, ...] = tuple(LEVELS)  # type: ignore[arg-type]  # keys are LevelName


class NvsValue(BaseModel):
    """One exported NVS entry; the value must fit its declared type (strings: JSON strings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: NvsType
    value: StrictInt | StrictFloat | StrictStr

    @model_validator(mode="after")
    def _fits(self) -> NvsValue:
        value = self.value
        if self.type == "str":
            if not isinstance(value, str):
                raise ValueError("a str entry needs a JSON string value")
        elif self.type in ("float", "double"):
            if isinstance(value, str):
                raise ValueError(f"a {self.type} entry needs a number")
        else:
            low, high = INT_RANGES[self.type]
            if not isinstance(value, int):
                raise ValueError(f"a {self.type} entry needs an integer")
            if not low <= value <= high:
                raise ValueError(f"{value} is out of range for {self.type} ({low}..{high})")
        return self


Nvs = dict[str, dict[str, NvsValue]]


@dataclass(frozen=True)
class Key:
    """A device key and the homemeter field it holds (`path`: dotted, within `AppConfig`).

    `type` is what the device stores (the export writes it); reading is lenient about the width:
    any integer type for integers and booleans (NVS has no bool: the device writes u8 0/1), any
    number for floats, so a backup of an older firmware with other widths still imports.
    """

    nvs: str
    path: str
    type: NvsType
    boolean: bool = False


# One table per namespace whose keys are plain `AppConfig` fields (facts: the reference sections
# named in the module docstring; `sample_time` is u64 on the device, calibration values i32).
CONFIG_KEYS: Mapping[str, tuple[Key, ...]] = MappingProxyType(
    {
        "ade7953_ns": (
            Key("sample_time", "sampleTime", "u64"),
            *(
                Key(nvs, f"ade7953.{field}", "i32")
                for nvs, field in (
                    ("av_gain", "aVGain"),
                    ("ai_gain", "aIGain"),
                    ("bi_gain", "bIGain"),
                    ("airms_os", "aIRmsOs"),
                    ("birms_os", "bIRmsOs"),
                    ("aw_gain", "aWGain"),
                    ("bw_gain", "bWGain"),
                    ("awatt_os", "aWattOs"),
                    ("bwatt_os", "bWattOs"),
                    ("avar_gain", "aVarGain"),
                    ("bvar_gain", "bVarGain"),
                    ("avar_os", "aVarOs"),
                    ("bvar_os", "bVarOs"),
                    ("ava_gain", "aVaGain"),
                    ("bva_gain", "bVaGain"),
                    ("ava_os", "aVaOs"),
                    ("bva_os", "bVaOs"),
                    ("phcal_a", "phCalA"),
                    ("phcal_b", "phCalB"),
                )
            ),
        ),
        "custom_mqtt_ns": (
            Key("enabled", "mqtt.enabled", "u8", boolean=True),
            Key("server", "mqtt.server", "str"),
            Key("port", "mqtt.port", "u16"),
            Key("clientId", "mqtt.clientid", "str"),
            Key("useCred", "mqtt.useCredentials", "u8", boolean=True),
            Key("topic", "mqtt.topic", "str"),
            Key("frequency", "mqtt.frequency", "u32"),
            Key("username", "mqtt.username", "str"),
            Key("password", "mqtt.password", "str"),
        ),
        "influxdb_ns": (
            Key("enabled", "influxdb.enabled", "u8", boolean=True),
            Key("server", "influxdb.server", "str"),
            Key("port", "influxdb.port", "u16"),
            Key("version", "influxdb.version", "u8"),
            Key("database", "influxdb.database", "str"),
            Key("username", "influxdb.username", "str"),
            Key("password", "influxdb.password", "str"),
            Key("organization", "influxdb.organization", "str"),
            Key("bucket", "influxdb.bucket", "str"),
            Key("token", "influxdb.token", "str"),
            Key("measurement", "influxdb.measurement", "str"),
            Key("frequency", "influxdb.frequency", "u32"),
            Key("useSsl", "influxdb.useSsl", "u8", boolean=True),
        ),
        "udp_log_ns": (Key("udp_dest", "udpLog.destination", "str"),),
        # Exported for the device; not imported (no LED on a Linux host: see device_backup.SKIPPED).
        "led_ns": (Key("brightness", "led.brightness", "u8"),),
    }
)

# channels_ns: `<name>_<index>`; `path` is within ChannelConfig. Role is stored as its code.
CHANNEL_KEYS: tuple[Key, ...] = (
    Key("active", "active", "u8", boolean=True),
    Key("reverse", "reverse", "u8", boolean=True),
    Key("label", "label", "str"),
    Key("phase", "phase", "u8"),
    Key("ct_current", "ctSpecification.currentRating", "float"),
    Key("ct_voltage", "ctSpecification.voltageOutput", "float"),
    Key("ct_scaling", "ctSpecification.scalingFraction", "float"),
    Key("grp_label", "groupLabel", "str"),
    Key("role", "role", "u8"),
)
CHANNEL_KEY = re.compile(r"([a-z_]+?)_(\d{1,3})")
ROLE_BY_CODE: Mapping[int, Role] = MappingProxyType({role.code: role for role in Role})

# energy_ns: `ch<index>_<name>` doubles (older firmware: floats), in EnergyTotals order.
ENERGY_KEYS = ("actImp", "actExp", "reactImp", "reactExp", "apparent")
ENERGY_KEY = re.compile(r"ch(\d{1,3})_([A-Za-z]+)")

LOG_KEYS = ("printLevel", "saveLevel")  # adv_log_ns, i32 each


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value[part]
    return value


def _entry(key: Key, value: Any) -> dict[str, Any]:
    if key.boolean:
        value = int(bool(value))
    elif key.type in ("float", "double"):
        value = float(value)
    return {"type": key.type, "value": value}


def _channel(ch: Mapping[str, Any]) -> dict[str, Any]:
    i = ch["index"]
    out = {f"{k.nvs}_{i}": _entry(k, get_path(ch, k.path)) for k in CHANNEL_KEYS if k.nvs != "role"}
    out[f"role_{i}"] = {"type": "u8", "value": Role(ch["role"]).code}
    return out


def device_nvs(
    config: AppConfig, energy: Sequence[EnergyTotals], log_levels: tuple[str, str], *, reveal: bool
) -> dict[str, dict[str, dict[str, Any]]]:
    """The device's `nvs` object for every setting that has a device equivalent.

    Secrets are masked as in the rest of the backup unless `reveal`; energy totals are the
    device's `energy_ns` doubles (Wh, VArh, VAh) as they stand now.
    """
    doc = config.model_dump(mode="json", context=REVEAL if reveal else None)
    nvs: dict[str, dict[str, dict[str, Any]]] = {
        ns: {k.nvs: _entry(k, get_path(doc, k.path)) for k in keys} for ns, keys in CONFIG_KEYS.items()
    }
    nvs["channels_ns"] = {}
    for ch in doc["channels"]:
        nvs["channels_ns"].update(_channel(ch))
    nvs["energy_ns"] = {
        f"ch{i}_{name}": {"type": "double", "value": value}
        for i, totals in enumerate(energy)
        for name, value in zip(ENERGY_KEYS, totals.as_tuple(), strict=True)
    }
    nvs["adv_log_ns"] = {
        name: {"type": "i32", "value": LOG_LEVELS.index(level)}
        for name, level in zip(LOG_KEYS, log_levels, strict=True)
    }
    return nvs
