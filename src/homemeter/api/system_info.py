"""`GET /system/info`: the device's `{static, dynamic}` document with host facts as analogues.

Every key of the device is present with its JSON type (its info page reads most of them); the Home
Assistant integration reads nine (reference 6.4). Analogues: heap -> system RAM, littlefs -> the
data directory's filesystem, chip -> the host CPU, WiFi -> the interface of the default route. What
the host cannot tell (PSRAM, flash, NVS, RSSI, a temperature without a thermal zone) is 0 or null.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from collections.abc import Sequence
from typing import TypeVar

import psutil
from pydantic import BaseModel

from homemeter.api.services import Services
from homemeter.system import host
from homemeter.system.cpu_load import CpuSample
from homemeter.timestamps import iso_time

CPU_WINDOW_S = 60  # the per-core statistics cover the last minute of once-a-second samples
CPU_BUSY = 80  # % above which a sample counts in samplesAboveThreshold


class Product(BaseModel):
    companyName: str
    productName: str
    fullProductName: str
    productDescription: str
    githubUrl: str
    author: str
    authorEmail: str


class Firmware(BaseModel):
    buildVersion: str
    buildDate: str
    buildTime: str
    sketchMD5: str
    partitionAppName: str


class Hardware(BaseModel):
    chipModel: str
    chipRevision: int
    chipCores: int
    chipId: int
    cpuFrequencyMHz: int
    flashChipSizeBytes: int
    flashChipSpeedHz: int
    psramSizeBytes: int


class Monitoring(BaseModel):
    crashCount: int
    consecutiveCrashCount: int
    resetCount: int
    consecutiveResetCount: int
    lastResetReason: int
    lastResetReasonString: str
    lastResetWasCrash: bool


class Sdk(BaseModel):
    sdkVersion: str
    coreVersion: str


class Device(BaseModel):
    id: str
    devBuild: bool


class Factory(BaseModel):
    serialNumber: str
    manufacturingUnixTs: int


class StaticInfo(BaseModel):
    product: Product
    firmware: Firmware
    hardware: Hardware
    monitoring: Monitoring
    sdk: Sdk
    device: Device
    factory: Factory


class Uptime(BaseModel):
    uptimeMilliseconds: int
    uptimeSeconds: int
    currentTimestampIso: str


class Memory(BaseModel):
    totalBytes: int
    freeBytes: int
    usedBytes: int
    minFreeBytes: int
    maxAllocBytes: int
    freePercentage: float
    usedPercentage: float


class MemoryInfo(BaseModel):
    heap: Memory
    psram: Memory


class Filesystem(BaseModel):
    totalBytes: int
    usedBytes: int
    freeBytes: int
    freePercentage: float
    usedPercentage: float


class Nvs(BaseModel):
    totalUsableEntries: int
    usedEntries: int
    availableEntries: int
    namespaceCount: int
    usedEntriesPercentage: float
    availableEntriesPercentage: float


class Storage(BaseModel):
    littlefs: Filesystem
    nvs: Nvs


class Performance(BaseModel):
    temperatureCelsius: float | None  # null: the host exposes no thermal zone


class CoreLoad(BaseModel):
    current: int
    min: int
    max: int
    avg: int
    p50: int
    p90: int
    p95: int
    p99: int
    samplesInWindow: int
    samplesAboveThreshold: int
    windowSeconds: int


class Cpu(BaseModel):
    core0: CoreLoad
    core1: CoreLoad


class NetworkInfo(BaseModel):
    wifiConnected: bool
    wifiSsid: str  # the interface name (e.g. eth0): the host's link has no SSID
    wifiMacAddress: str
    wifiLocalIp: str
    wifiGatewayIp: str
    wifiSubnetMask: str
    wifiDnsIp: str
    wifiBssid: str
    wifiRssi: int | None  # null: no radio link is measured
    mdnsHostname: str | None  # not on the device: the name advertised over mDNS; null when none is


class DynamicInfo(BaseModel):
    time: Uptime
    memory: MemoryInfo
    storage: Storage
    performance: Performance
    cpu: Cpu
    network: NetworkInfo
    tasks: dict[str, dict[str, float]]  # the device's FreeRTOS tasks: none here


class SystemInfo(BaseModel):
    static: StaticInfo
    dynamic: DynamicInfo


M = TypeVar("M", bound=BaseModel)


def _zeros(model: type[M]) -> M:
    """A model whose every (numeric) field is 0: what the host has no analogue for."""
    return model.model_validate(dict.fromkeys(model.model_fields, 0))


def _percent(part: int, total: int) -> float:
    return round(100.0 * part / total, 2) if total else 0.0


def _core_load(samples: Sequence[CpuSample], core: int) -> CoreLoad:
    values = sorted(s.percent[core] for s in samples if core < len(s.percent))
    if not values:
        return _zeros(CoreLoad).model_copy(update={"windowSeconds": CPU_WINDOW_S})
    last = samples[-1].percent

    def pct(q: float) -> int:
        return values[min(len(values) - 1, int(q * len(values)))]

    return CoreLoad(
        current=last[core] if core < len(last) else 0,
        min=values[0],
        max=values[-1],
        avg=round(sum(values) / len(values)),
        p50=pct(0.50),
        p90=pct(0.90),
        p95=pct(0.95),
        p99=pct(0.99),
        samplesInWindow=len(values),
        samplesAboveThreshold=sum(v > CPU_BUSY for v in values),
        windowSeconds=CPU_WINDOW_S,
    )


class SystemInfoReader:
    """Builds the document; remembers the lowest free memory seen, the device's `minFreeBytes`."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self._min_free: int | None = None

    def static(self) -> StaticInfo:
        svc, build, start = self._svc, host.build(), self._svc.start
        freq = psutil.cpu_freq()
        return StaticInfo(
            product=Product(
                companyName="homemeter",
                productName="homemeter",
                fullProductName="homemeter - EnergyMe-Home compatible energy monitor",
                productDescription="Multi-channel home energy monitor for Linux",
                githubUrl="",
                author="",
                authorEmail="",
            ),
            firmware=Firmware(
                buildVersion=build.version,
                buildDate=build.date,
                buildTime=build.time,
                sketchMD5=build.md5,
                partitionAppName="homemeter",
            ),
            hardware=Hardware(
                chipModel=host.cpu_model(),
                chipRevision=0,
                chipCores=os.cpu_count() or 0,
                chipId=int(svc.device_id, 16),  # the device sends its MAC as a number too
                cpuFrequencyMHz=int(max(freq.max, freq.current)) if freq else 0,
                flashChipSizeBytes=0,
                flashChipSpeedHz=0,
                psramSizeBytes=0,
            ),
            monitoring=Monitoring(
                crashCount=start.crashCount,
                consecutiveCrashCount=start.consecutiveCrashCount,
                resetCount=start.resetCount,
                consecutiveResetCount=start.consecutiveResetCount,
                lastResetReason=int(start.reason),
                lastResetReasonString=start.reason.text,
                lastResetWasCrash=start.reason.name == "PANIC",
            ),
            sdk=Sdk(sdkVersion=f"Python {platform.python_version()}", coreVersion=platform.release()),
            device=Device(id=svc.device_id, devBuild=False),
            factory=Factory(serialNumber="Unknown", manufacturingUnixTs=0),
        )

    def dynamic(self) -> DynamicInfo:
        svc = self._svc
        uptime_ms = int((time.monotonic() - svc.started_monotonic) * 1000)
        ram = psutil.virtual_memory()
        self._min_free = ram.available if self._min_free is None else min(self._min_free, ram.available)
        disk = shutil.disk_usage(svc.data_dir)
        window = svc.cpu.last(CPU_WINDOW_S)
        net = host.primary_network()
        return DynamicInfo(
            time=Uptime(
                uptimeMilliseconds=uptime_ms,
                uptimeSeconds=uptime_ms // 1000,
                currentTimestampIso=iso_time(time.time()),
            ),
            memory=MemoryInfo(
                heap=Memory(
                    totalBytes=ram.total,
                    freeBytes=ram.available,
                    usedBytes=ram.total - ram.available,
                    minFreeBytes=self._min_free,
                    maxAllocBytes=ram.available,
                    freePercentage=_percent(ram.available, ram.total),
                    usedPercentage=_percent(ram.total - ram.available, ram.total),
                ),
                psram=_zeros(Memory),  # no PSRAM
            ),
            storage=Storage(
                littlefs=Filesystem(
                    totalBytes=disk.total,
                    usedBytes=disk.total - disk.free,
                    freeBytes=disk.free,
                    freePercentage=_percent(disk.free, disk.total),
                    usedPercentage=_percent(disk.total - disk.free, disk.total),
                ),
                nvs=_zeros(Nvs),  # settings live in one JSON file, not NVS entries
            ),
            performance=Performance(temperatureCelsius=host.cpu_temperature()),
            cpu=Cpu(core0=_core_load(window, 0), core1=_core_load(window, 1)),
            network=NetworkInfo(
                wifiConnected=net.connected,
                wifiSsid=net.interface if net.connected else "Not connected",
                wifiMacAddress=net.mac,
                wifiLocalIp=net.ip,
                wifiGatewayIp=net.gateway,
                wifiSubnetMask=net.netmask,
                wifiDnsIp=net.dns,
                wifiBssid="",
                wifiRssi=None,
                mdnsHostname=self._mdns_hostname(),
            ),
            tasks={},
        )

    def _mdns_hostname(self) -> str | None:
        status = self._svc.status("mdns")
        hostname = status.details.get("hostname") if status is not None else None
        return hostname if isinstance(hostname, str) else None

    def read(self) -> SystemInfo:
        return SystemInfo(static=self.static(), dynamic=self.dynamic())
