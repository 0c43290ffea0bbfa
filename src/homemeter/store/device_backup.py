"""Reading an EnergyMe-Home device's configuration backup into homemeter's configuration.

Pure: a parsed document and the running configuration in, the new configuration, the device's
energy counters and the keys left out (each with its reason) out. Nothing is applied here, and
every problem is collected first, so a backup is refused whole with one message naming each
`namespace.key` (values are never quoted: some are secrets).

Choices where the device is loose or the reference silent:
- A key missing from the backup keeps homemeter's current value (the device's restore, too,
  writes only the keys the file holds).
- An empty label or group label gets the device's default name; a split phase on channel 0
  becomes L1 (the device coerces both at load).
- Legacy `is_grid_N` / `is_prod_N` / `is_batt_N` become a role (grid, then pv, then battery) when
  `role_N` is absent; next to `role_N` they are listed as skipped.
- An empty MQTT or InfluxDB server leaves that integration disabled and homemeter's server kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from homemeter.config.app import AppConfig
from homemeter.config.roles import Phase, Role
from homemeter.config.secrets import PLACEHOLDER
from homemeter.logs.control import LevelName
from homemeter.meter.quantities import MAX_ENERGY
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.backup import BackupRejected
from homemeter.store.device_nvs import (
    CHANNEL_KEY,
    CHANNEL_KEYS,
    CONFIG_KEYS,
    DEVICE_MAJOR,
    ENERGY_KEY,
    ENERGY_KEYS,
    EXCLUDED_NAMESPACES,
    INT_RANGES,
    LOG_KEYS,
    LOG_LEVELS,
    ROLE_BY_CODE,
    Key,
    Nvs,
    NvsValue,
)

#: Namespaces that mean nothing on a Linux host, each with the reason the response gives.
SKIPPED_NAMESPACES: Mapping[str, str] = MappingProxyType(
    {
        "wifi_ns": "Wi-Fi and static IP: the host's network is set up on the host",
        "led_ns": "no status LED on a Linux host",
        "button_ns": "no button on a Linux host",
        "crashmonitor_ns": "the device's own crash and reset counters",
        "time_ns": "the host keeps its own clock",
        "mqtt_ns": "EnergyMe cloud MQTT is not part of homemeter",
        "general_ns": "device-internal state",
        "calibration_ns": "device-internal state",
    }
)
UNKNOWN_NAMESPACE = "namespace not known to homemeter"
UNUSED_KEY = "not used by homemeter"
_LEGACY_ROLES = (("is_grid", Role.GRID), ("is_prod", Role.PV), ("is_batt", Role.BATTERY))
_CHANNEL_SKIPS = MappingProxyType(
    {
        "highpri": "the device deletes it at load (no longer used)",
        "start_meas": "homemeter has no measuring-start time per channel",
    }
)
_SERVER_SECTIONS = MappingProxyType({"custom_mqtt_ns": "mqtt", "influxdb_ns": "influxdb"})
_VERSION = re.compile(r"(\d+)\.\d+(\.\d+)?")


class DeviceBackup(BaseModel):
    """The device's backup document (`GET /api/v1/backup/configuration`, rest-api.md 3.5)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int
    type: str
    deviceId: str = ""
    firmwareVersion: str
    sketchMD5: str = ""
    timestamp: str = ""
    nvs: Nvs


@dataclass(frozen=True)
class DeviceSettings:
    """What a device backup changes, validated whole; applying it is the caller's job."""

    config: AppConfig
    energy: Mapping[int, EnergyTotals]  # the device's counters, per channel found in energy_ns
    log_levels: tuple[LevelName | None, LevelName | None]  # (print, save); None: not in the backup
    skipped: Mapping[str, str]  # "namespace.key" -> why it was left out
    imported: int  # keys that became homemeter settings (for the summary)


def is_device_document(doc: Any) -> bool:
    """The device's format: a configuration backup with `nvs` and without homemeter's own section."""
    return (
        isinstance(doc, dict)
        and doc.get("type") == "configuration"
        and "nvs" in doc
        and "configuration" not in doc
    )


def _major(version: str) -> int:
    match = _VERSION.fullmatch(version)
    if match is None:
        raise BackupRejected(f"firmwareVersion: {version!r} is not a version like 2.2.1")
    return int(match.group(1))


def check_device_document(
    doc: Any, device_id: str, own_version: str, force: bool, force_hint: str = "Use ?force=true to override."
) -> DeviceBackup:
    """The device's restore checks, in its order, then every value's type.

    The firmware check accepts the device's 2.x layout (the one these tables describe); a backup
    written by homemeter (it also holds homemeter's own section) may carry homemeter's version.
    """
    if not isinstance(doc, dict) or doc.get("version") != 1 or doc.get("type") != "configuration":
        raise BackupRejected("Invalid backup format: expected version 1 and type 'configuration'")
    if not isinstance(doc.get("nvs"), dict):
        raise BackupRejected("Invalid backup format: nvs must be an object")
    backup_version = doc.get("firmwareVersion")
    if not isinstance(backup_version, str):
        raise BackupRejected("Backup missing firmware version")
    majors = {DEVICE_MAJOR} | ({_major(own_version)} if isinstance(doc.get("configuration"), dict) else set())
    if _major(backup_version) not in majors:
        raise BackupRejected(
            f"Firmware version incompatible: backup from {backup_version}; homemeter reads "
            f"configuration backups of EnergyMe-Home firmware {DEVICE_MAJOR}.x"
        )
    if not force and doc.get("deviceId") != device_id:
        raise BackupRejected(
            f"Device ID mismatch: backup from {doc.get('deviceId')}, current device {device_id}. {force_hint}"
        )
    excluded = sorted(set(doc["nvs"]) & set(EXCLUDED_NAMESPACES))
    if excluded:
        raise BackupRejected(
            "Backup contains excluded namespace (security/device-specific data): " + ", ".join(excluded)
        )
    try:
        return DeviceBackup.model_validate(doc)
    except ValidationError as err:
        raise BackupRejected(_describe_nvs(err)) from err


def _describe_nvs(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = [str(x) for x in e["loc"]]
        if loc[:1] == ["nvs"] and len(loc) >= 3:  # namespace.key, and which part of the entry
            where = " ".join([f"{loc[1]}.{loc[2]}", *loc[3:4]])
        else:
            where = ".".join(loc) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(dict.fromkeys(parts))  # a union reports one cause per member: keep each once


def map_backup(nvs: Nvs, current: AppConfig) -> DeviceSettings:
    """The configuration a device backup gives, on top of `current`; `BackupRejected` names each bad key."""
    reader = _Reader(current)
    for namespace in sorted(nvs):
        reader.namespace(namespace, nvs[namespace])
    return reader.result()


def raised(own: EnergyTotals, device: EnergyTotals) -> EnergyTotals:
    """Each counter at the higher of the two: an import never lowers a total, and re-runs change nothing."""
    return EnergyTotals(*(max(a, b) for a, b in zip(own.as_tuple(), device.as_tuple(), strict=True)))


@dataclass
class _Reader:
    """Collects values into a dump of the current configuration, and every problem on the way."""

    current: AppConfig
    doc: dict[str, Any] = field(init=False)
    sources: dict[str, str] = field(default_factory=dict)  # config path -> "namespace.key"
    skipped: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    energy: dict[int, list[float]] = field(default_factory=dict)
    levels: list[LevelName | None] = field(default_factory=lambda: [None, None])
    legacy: dict[int, dict[str, tuple[bool, str]]] = field(default_factory=dict)
    roles_given: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.doc = self.current.model_dump()

    @property
    def channel_count(self) -> int:
        return len(self.current.channels)

    def namespace(self, ns: str, entries: Mapping[str, NvsValue]) -> None:
        if ns in SKIPPED_NAMESPACES or ns not in (*CONFIG_KEYS, "channels_ns", "energy_ns", "adv_log_ns"):
            reason = SKIPPED_NAMESPACES.get(ns, UNKNOWN_NAMESPACE)
            self.skipped.update({f"{ns}.{key}": reason for key in entries})
        elif ns == "channels_ns":
            for key, entry in entries.items():
                self.channel_key(key, entry)
        elif ns == "energy_ns":
            for key, entry in entries.items():
                self.energy_key(key, entry)
        elif ns == "adv_log_ns":
            for key, entry in entries.items():
                self.log_key(key, entry)
        else:
            self.config_namespace(ns, entries)

    # ------------------------------------------------------------------------- typed reads
    def read(self, where: str, key: Key, entry: NvsValue) -> Any:
        """The entry as the field's kind, or None after recording why it does not fit."""
        value = entry.value
        integer = entry.type in INT_RANGES
        if key.boolean:
            if integer and value in (0, 1):
                return bool(value)
            self.errors.append(f"{where}: expected 0 or 1 in an integer entry (a boolean)")
        elif key.type == "str":
            if entry.type == "str":
                return value
            self.errors.append(f"{where}: expected a str entry, got {entry.type}")
        elif key.type in ("float", "double"):
            if entry.type != "str":
                return float(value)
            self.errors.append(f"{where}: expected a number, got a str entry")
        elif integer:
            return value
        else:
            self.errors.append(f"{where}: expected an integer entry, got {entry.type}")
        return None

    def put(self, path: str, value: Any, source: str) -> None:
        target = self.doc
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if isinstance(target, list | tuple) else target[part]
        target[last] = value
        self.sources[path] = source

    # ------------------------------------------------------------------------- namespaces
    def config_namespace(self, ns: str, entries: Mapping[str, NvsValue]) -> None:
        keys = {k.nvs: k for k in CONFIG_KEYS[ns]}
        empty_server = False
        for name, entry in entries.items():
            where = f"{ns}.{name}"
            key = keys.get(name)
            if key is None:
                self.skipped[where] = UNUSED_KEY
                continue
            value = self.read(where, key, entry)
            if value is None:
                continue
            if value == PLACEHOLDER and _is_secret(key.path):
                continue  # a masked secret (homemeter's own export): keep the stored one
            if name == "server" and value == "" and ns in _SERVER_SECTIONS:
                empty_server = True
                self.skipped[where] = "empty: homemeter keeps its own server and leaves this disabled"
                continue
            self.put(key.path, SecretStr(value) if _is_secret(key.path) else value, where)
        if empty_server:  # whatever `enabled` said: there is nowhere to publish to
            self.put(f"{_SERVER_SECTIONS[ns]}.enabled", False, f"{ns}.enabled")

    def channel_key(self, name: str, entry: NvsValue) -> None:
        where = f"channels_ns.{name}"
        match = CHANNEL_KEY.fullmatch(name)
        keys = {k.nvs: k for k in CHANNEL_KEYS}
        legacy = dict(_LEGACY_ROLES)
        if match is None or match.group(1) not in (*keys, *legacy, *_CHANNEL_SKIPS):
            self.skipped[where] = UNUSED_KEY
            return
        kind, index = match.group(1), int(match.group(2))
        if index >= self.channel_count:
            self.skipped[where] = f"channel {index}: homemeter runs {self.channel_count} channels"
        elif kind in _CHANNEL_SKIPS:
            self.skipped[where] = _CHANNEL_SKIPS[kind]
        elif kind in legacy:
            flag = self.read(where, Key(kind, "", "u8", boolean=True), entry)
            if flag is not None:
                self.legacy.setdefault(index, {})[kind] = (flag, where)
        else:
            self.channel_value(index, keys[kind], entry, where)

    def channel_value(self, index: int, key: Key, entry: NvsValue, where: str) -> None:
        value = self.read(where, key, entry)
        if value is None:
            return
        if key.nvs == "role":
            self.roles_given.add(index)
            if value not in ROLE_BY_CODE:
                codes = ", ".join(f"{code} {role.value}" for code, role in ROLE_BY_CODE.items())
                self.errors.append(f"{where}: {value} is not a role code ({codes})")
                return
            value = ROLE_BY_CODE[value]
        elif key.nvs in ("label", "grp_label") and value == "":
            value = f"Channel {index}" if key.nvs == "label" else f"Group {index}"
        elif key.nvs == "phase" and index == 0 and value == Phase.SPLIT:
            value = Phase.L1
        self.put(f"channels.{index}.{key.path}", value, where)

    def energy_key(self, name: str, entry: NvsValue) -> None:
        where = f"energy_ns.{name}"
        match = ENERGY_KEY.fullmatch(name)
        if match is None or match.group(2) not in ENERGY_KEYS:
            self.skipped[where] = UNUSED_KEY
            return
        index = int(match.group(1))
        if index >= self.channel_count:
            self.skipped[where] = f"channel {index}: homemeter runs {self.channel_count} channels"
            return
        value = self.read(where, Key(name, "", "double"), entry)
        if value is None:
            return
        if not 0 <= value <= MAX_ENERGY:  # also false for NaN
            self.errors.append(f"{where}: an energy counter must be a number >= 0 and <= {MAX_ENERGY:g}")
            return
        self.energy.setdefault(index, [0.0] * len(ENERGY_KEYS))[ENERGY_KEYS.index(match.group(2))] = value

    def log_key(self, name: str, entry: NvsValue) -> None:
        where = f"adv_log_ns.{name}"
        if name not in LOG_KEYS:
            self.skipped[where] = UNUSED_KEY
            return
        value = self.read(where, Key(name, "", "i32"), entry)
        if value is None:
            return
        if not 0 <= value < len(LOG_LEVELS):
            self.errors.append(f"{where}: {value} is not a log level (0 VERBOSE ... 5 FATAL)")
            return
        self.levels[LOG_KEYS.index(name)] = LOG_LEVELS[value]

    # ------------------------------------------------------------------------- result
    def apply_legacy_roles(self) -> None:
        for index, flags in sorted(self.legacy.items()):
            if index in self.roles_given:
                for _, where in flags.values():
                    self.skipped[where] = f"superseded by channels_ns.role_{index}"
                continue
            role = next((r for name, r in _LEGACY_ROLES if flags.get(name, (False, ""))[0]), Role.LOAD)
            self.put(f"channels.{index}.role", role, ", ".join(where for _, where in flags.values()))

    def result(self) -> DeviceSettings:
        self.apply_legacy_roles()
        config: AppConfig | None = None
        try:  # also after a bad entry (left out of the dump): every problem is named at once
            config = AppConfig.model_validate(self.doc)
        except ValidationError as err:
            self.errors.extend(self.describe(e) for e in err.errors())
        if self.errors or config is None:
            raise BackupRejected("Invalid device backup: " + "; ".join(dict.fromkeys(self.errors)))
        return DeviceSettings(
            config=config,
            energy={i: EnergyTotals(*values) for i, values in sorted(self.energy.items())},
            log_levels=(self.levels[0], self.levels[1]),
            skipped=dict(sorted(self.skipped.items())),
            imported=len(set(self.sources.values())),
        )

    def describe(self, error: Any) -> str:
        """A configuration error named by the device key it came from."""
        path = ".".join(str(x) for x in error["loc"])
        where = self.sources.get(path)
        if where is None and path.startswith("channels"):
            parts = path.split(".")
            where = f"channels_ns (channel {parts[1]})" if len(parts) > 1 else "channels_ns"
        return f"{where or path}: {error['msg']}"


def _is_secret(path: str) -> bool:
    section, _, name = path.partition(".")
    annotation = AppConfig.model_fields[section].annotation if section in AppConfig.model_fields else None
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return False
    return name in annotation.model_fields and annotation.model_fields[name].annotation is SecretStr
