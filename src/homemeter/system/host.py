"""Facts about the Linux host that stand in for the device's chip, flash and WiFi in `/system/info`.

Each reader returns None (or an empty value) when the host does not expose the fact, rather than
a made-up number: Home Assistant shows a missing value as "unavailable", a wrong one as data.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import ipaddress
import platform
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

import homemeter

THERMAL = Path("/sys/class/thermal")
# Zone types that measure the CPU itself, best first; any other zone only if none of these exists.
CPU_ZONES = ("x86_pkg_temp", "cpu-thermal", "cpu_thermal", "soc_thermal", "coretemp", "k10temp")
TIME_ERROR = 5  # adjtimex(2): the kernel clock is not synchronised (no NTP discipline)


def cpu_temperature(root: Path = THERMAL) -> float | None:
    """CPU temperature in °C from the kernel's thermal zones, or None if none is readable."""
    readings: dict[str, float] = {}
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip()
            readings.setdefault(kind, int((zone / "temp").read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    for kind in CPU_ZONES:
        if kind in readings:
            return round(readings[kind], 1)
    return round(next(iter(readings.values())), 1) if readings else None


def clock_synced() -> bool:
    """True if the kernel says an NTP daemon keeps the clock synchronised (as `timedatectl`)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex (208 bytes); modes=0: read only
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):  # not Linux
        return False
    return state not in (-1, TIME_ERROR)


@dataclass(frozen=True, slots=True)
class Network:
    """The interface that carries the default route: the host's analogue of the device's WiFi."""

    connected: bool
    interface: str = ""
    mac: str = ""
    ip: str = ""
    gateway: str = ""
    netmask: str = ""
    dns: str = ""


def primary_network(route_table: Path = Path("/proc/net/route")) -> Network:
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return Network(connected=False)
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":  # destination 0.0.0.0: the default route
            iface = fields[0]
            gateway = str(ipaddress.IPv4Address(struct.pack("<I", int(fields[2], 16))))
            return _describe(iface, gateway)
    return Network(connected=False)


def _describe(iface: str, gateway: str) -> Network:
    ip = netmask = mac = ""
    for addr in psutil.net_if_addrs().get(iface, []):
        if addr.family == socket.AF_INET and not ip:
            ip, netmask = addr.address, addr.netmask or ""
        elif addr.family == psutil.AF_LINK:
            mac = addr.address.upper()
    return Network(True, iface, mac, ip, gateway, netmask, _first_nameserver())


def _first_nameserver(path: Path = Path("/etc/resolv.conf")) -> str:
    try:
        text = path.read_text()
    except OSError:
        return ""  # no resolver configuration
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            return parts[1]
    return ""


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name (x86) or board model (Raspberry Pi), else the architecture."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""  # not Linux: the architecture is all we know
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.machine()


@dataclass(frozen=True, slots=True)
class Build:
    """What the device calls its firmware build: our installed code."""

    version: str
    date: str  # C __DATE__ format, "Aug  3 2025"
    time: str  # "14:02:11"
    md5: str  # of the package's source files: changes with any code change


@functools.cache
def build() -> Build:
    package = Path(homemeter.__file__).parent
    sources = sorted(package.rglob("*.py"))
    digest = hashlib.md5(usedforsecurity=False)
    for path in sources:
        digest.update(path.read_bytes())
    built = time.localtime(max(p.stat().st_mtime for p in sources))
    date = f"{time.strftime('%b', built)} {built.tm_mday:2d} {built.tm_year}"
    return Build(homemeter.__version__, date, time.strftime("%H:%M:%S", built), digest.hexdigest())
