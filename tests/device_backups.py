"""EnergyMe-Home configuration backups as the device writes them (reference rest-api.md 3.5).

`device_backup()` holds every namespace the reference lists and every value type (u8, i8, u16, i16,
u32, i32, u64, i64, str, float, double): the settings homemeter imports, with values that differ
from homemeter's defaults so an import is visible, and device-only namespaces (Wi-Fi, LED, button,
crash monitor, time, cloud MQTT) that must come back as skipped.
"""

from __future__ import annotations

import copy
from typing import Any

DEVICE_ID = "588c81c47a50"
MQTT_PASSWORD = "device-mqtt-secret-77"
INFLUX_TOKEN = "device-influx-token-99"
ROLES = {0: 1, 1: 2, 2: 3, 3: 4}  # channel -> role code (grid, pv, battery, inverter); others load 0

#: Every key of the namespaces homemeter has no use for: what `skipped` must list.
DEVICE_ONLY: dict[str, dict[str, dict[str, Any]]] = {
    "wifi_ns": {
        "useStatic": {"type": "u8", "value": 1},
        "ip": {"type": "str", "value": "192.168.1.50"},
        "gateway": {"type": "str", "value": "192.168.1.1"},
        "subnet": {"type": "str", "value": "255.255.255.0"},
        "dns1": {"type": "str", "value": "192.168.1.1"},
        "dns2": {"type": "str", "value": ""},
        "fallback": {"type": "u8", "value": 1},
        "staticFails": {"type": "u16", "value": 2},
    },
    "led_ns": {"brightness": {"type": "u8", "value": 30}},
    "button_ns": {"pressCount": {"type": "i8", "value": -3}},
    "crashmonitor_ns": {
        "crashCount": {"type": "u32", "value": 4},
        "resetCount": {"type": "u32", "value": 17},
        "lastCrash": {"type": "i64", "value": -(2**40)},
    },
    "time_ns": {"tzOffset": {"type": "i16", "value": -300}},
    "mqtt_ns": {"cloudEnabled": {"type": "u8", "value": 0}, "lastPublish": {"type": "u64", "value": 2**63}},
    "general_ns": {"firstBoot": {"type": "u8", "value": 0}},
    "calibration_ns": {"legacyGain": {"type": "float", "value": 1.25}},
}


def entry(kind: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "value": value}


def channel_keys(index: int) -> dict[str, dict[str, Any]]:
    """One channel as channels_ns stores it; every channel differs from the factory defaults."""
    return {
        f"active_{index}": entry("u8", 1 if index < 6 else 0),
        f"reverse_{index}": entry("u8", 1 if index == 4 else 0),
        f"label_{index}": entry("str", f"Circuit {index}"),
        f"phase_{index}": entry("u8", 1 + index % 3),
        f"ct_current_{index}": entry("float", 50.0 if index == 0 else 20.0),
        f"ct_voltage_{index}": entry("float", 1.0 if index == 0 else 0.333),
        f"ct_scaling_{index}": entry("float", 0.015 if index == 1 else 0.0),
        f"grp_label_{index}": entry("str", f"Room {index}"),
        f"role_{index}": entry("u8", ROLES.get(index, 0)),
    }


def energy_keys(index: int) -> dict[str, dict[str, Any]]:
    """Distinct doubles per channel: active imported 1000 x (index + 1) Wh, and so on."""
    base = 1000.0 * (index + 1)
    values = (base, base / 10, base / 4, base / 8, base * 1.1)
    names = ("actImp", "actExp", "reactImp", "reactExp", "apparent")
    return {f"ch{index}_{n}": entry("double", v) for n, v in zip(names, values, strict=True)}


def device_backup(channels: int = 17, device_id: str = DEVICE_ID, firmware: str = "2.2.1") -> dict[str, Any]:
    """The whole document, as `GET /api/v1/backup/configuration` on the device answers it."""
    nvs: dict[str, dict[str, dict[str, Any]]] = {
        "ade7953_ns": {
            "sample_time": entry("u64", 1000),
            "av_gain": entry("i32", 4_100_000),
            "ai_gain": entry("i32", 4_200_000),
            "bi_gain": entry("i32", 4_250_000),
            "airms_os": entry("i32", -12),
            "birms_os": entry("i32", 7),
            "aw_gain": entry("i32", 4_194_000),
            "bw_gain": entry("i32", 4_194_001),
            "awatt_os": entry("i32", -1),
            "bwatt_os": entry("i32", 1),
            "avar_gain": entry("i32", 4_194_002),
            "bvar_gain": entry("i32", 4_194_003),
            "avar_os": entry("i32", -2),
            "bvar_os": entry("i32", 2),
            "ava_gain": entry("i32", 4_194_004),
            "bva_gain": entry("i32", 4_194_005),
            "ava_os": entry("i32", -3),
            "bva_os": entry("i32", 3),
            "phcal_a": entry("i32", 10),
            "phcal_b": entry("i32", -10),
        },
        "channels_ns": {k: v for i in range(channels) for k, v in channel_keys(i).items()},
        "energy_ns": {k: v for i in range(channels) for k, v in energy_keys(i).items()},
        "custom_mqtt_ns": {
            "enabled": entry("u8", 1),
            "server": entry("str", "127.0.0.1"),  # loopback: an MQTT publisher never leaves the host
            "port": entry("u16", 1),
            "clientId": entry("str", "energyme-kitchen"),
            "useCred": entry("u8", 1),
            "topic": entry("str", "house/energy"),
            "frequency": entry("u32", 30),
            "username": entry("str", "meter"),
            "password": entry("str", MQTT_PASSWORD),
        },
        "influxdb_ns": {
            "enabled": entry("u8", 1),
            "server": entry("str", "127.0.0.1"),
            "port": entry("u16", 2),
            "version": entry("u8", 1),
            "database": entry("str", "energy"),
            "username": entry("str", "writer"),
            "password": entry("str", "influx-pw"),
            "organization": entry("str", "home"),
            "bucket": entry("str", "power"),
            "token": entry("str", INFLUX_TOKEN),
            "measurement": entry("str", "em"),
            "frequency": entry("u32", 60),
            "useSsl": entry("u8", 0),
        },
        "udp_log_ns": {"udp_dest": entry("str", "192.168.1.20")},
        "adv_log_ns": {"printLevel": entry("i32", 3), "saveLevel": entry("i32", 4)},
        **copy.deepcopy(DEVICE_ONLY),
    }
    return {
        "version": 1,
        "type": "configuration",
        "deviceId": device_id,
        "firmwareVersion": firmware,
        "sketchMD5": "ad1783afd0b38f856d5010921712e2ed",
        "timestamp": "2026-02-16T13:01:54.177Z",
        "nvs": nvs,
    }


def skipped_keys() -> set[str]:
    return {f"{ns}.{key}" for ns, keys in DEVICE_ONLY.items() for key in keys}
