"""Endpoints tied to the device's ESP32 hardware, answered as honestly as a Linux service can.

Where Linux has no analogue (firmware upload, WiFi, static IP) the answer is 501; where the device
reports a state that is simply constant here (no safe mode, no core dump, community mode) that state
is reported; the LED brightness and ADE7953 calibration are stored and echoed (store/hardware.py).
No endpoint here answers success for something that did not happen.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from homemeter import __version__
from homemeter.api.responses import ApiError, JSONBytes, merge, read_json, require_fields, success, validate
from homemeter.api.routing import Endpoint, Query
from homemeter.api.services import Services
from homemeter.config.hardware import Ade7953Calibration, LedConfig
from homemeter.system import host
from homemeter.system.cpu_load import HISTORY_SECONDS, CpuHistory

NO_FIRMWARE_UPDATE = (
    "Firmware upload is not available: homemeter is updated as a Python package (pip), not over the API"
)
NETWORK_BY_OS = "Network settings are managed by the operating system, not by homemeter"
DEFAULT_CPU_SECONDS = 600


class OtaStatus(BaseModel):
    status: str
    canRollback: bool
    currentPartition: str
    hasError: bool
    lastError: str
    size: int
    progress: int
    remaining: int
    progressPercent: float
    currentVersion: str
    currentMD5: str


class NetworkConfiguration(BaseModel):
    useStaticIp: bool = False
    ip: str = ""
    gateway: str = ""
    subnet: str = ""
    dns1: str = ""
    dns2: str = ""
    fallbackToDhcp: bool = True


class CrashInfo(BaseModel):
    resetReason: str
    resetReasonCode: int
    crashCount: int
    consecutiveCrashCount: int
    resetCount: int
    consecutiveResetCount: int
    hasCoreDump: bool


class SafeMode(BaseModel):
    active: bool
    canRestartNow: bool
    minimumUptimeRemainingMs: int


class Secrets(BaseModel):
    hasSecrets: bool


class CloudServices(BaseModel):
    enabled: bool


class LedBrightness(BaseModel):
    brightness: int
    max_brightness: int


class CpuSamples(BaseModel):
    intervalSeconds: int
    fromEpoch: int
    toEpoch: int
    samplesReturned: int
    core0: list[int] | None = Field(None, description="absent unless core 0 was requested")
    core1: list[int] | None = Field(None, description="absent unless core 1 was requested")


def _cpu_query(request: Request) -> tuple[int, tuple[int, ...]]:
    raw = request.query_params.get("lastSeconds")
    seconds = DEFAULT_CPU_SECONDS
    if raw is not None:
        if not raw.lstrip("-").isdigit() or int(raw) <= 0:
            raise ApiError(400, "lastSeconds must be a positive integer")
        seconds = min(int(raw), HISTORY_SECONDS)
    core = request.query_params.get("core", "both")
    cores = {"0": (0,), "1": (1,), "both": (0, 1)}.get(core)
    if cores is None:
        raise ApiError(400, "core must be 0, 1, or both")
    return seconds, cores


def _cpu_body(history: CpuHistory, seconds: int, cores: tuple[int, ...]) -> dict[str, Any]:
    samples = history.last(seconds)
    body: dict[str, Any] = {
        "intervalSeconds": int(history.interval),
        "fromEpoch": samples[0].epoch if samples else 0,
        "toEpoch": samples[-1].epoch if samples else 0,
        "samplesReturned": len(samples),
    }
    for core in cores:
        # A one-CPU host has no second core to report: its array stays empty.
        body[f"core{core}"] = [s.percent[core] for s in samples if core < len(s.percent)]
    return body


# Constant answers: they need no services.
async def safe_mode(request: Request) -> Response:
    return JSONBytes({"active": False, "canRestartNow": True, "minimumUptimeRemainingMs": 0})


async def safe_mode_clear(request: Request) -> Response:
    return success("Device is not in safe mode")


async def secrets(request: Request) -> Response:
    return JSONBytes({"hasSecrets": False})  # community mode: no cloud provisioning


async def ota_upload(request: Request) -> Response:
    raise ApiError(501, NO_FIRMWARE_UPDATE)


async def ota_status(request: Request) -> Response:
    return JSONBytes(
        {
            "status": "idle",
            "canRollback": False,
            "currentPartition": "",  # no firmware partitions on a Linux host
            "hasError": False,
            "lastError": "No Error",
            "size": 0,
            "progress": 0,
            "remaining": 0,
            "progressPercent": 0.0,
            "currentVersion": __version__,
            "currentMD5": host.build().md5,  # the same build MD5 system/info shows
        }
    )


async def ota_rollback(request: Request) -> Response:
    raise ApiError(400, "Rollback not possible")


async def network_by_os(request: Request) -> Response:
    raise ApiError(501, NETWORK_BY_OS)


async def network_config(request: Request) -> Response:
    # What the device shows when it uses DHCP: the host's addressing is not homemeter's.
    return JSONBytes(NetworkConfiguration().model_dump())


async def crash_dump(request: Request) -> Response:
    raise ApiError(404, "No core dump available")


async def crash_clear(request: Request) -> Response:
    raise ApiError(404, "No core dump available to clear")


async def cloud_services(request: Request) -> Response:
    return JSONBytes({"enabled": False})


async def set_cloud_services(request: Request) -> Response:
    # Checked before the body, exactly as a community-mode device answers.
    raise ApiError(403, "Cloud services are not available in community mode")


def endpoints(svc: Services) -> list[Endpoint]:
    async def cpu_samples(request: Request) -> Response:
        seconds, cores = _cpu_query(request)
        return JSONBytes(_cpu_body(svc.cpu, seconds, cores))

    async def crash_info(request: Request) -> Response:
        start = svc.start
        return JSONBytes(
            {
                "resetReason": start.reason.text,
                "resetReasonCode": int(start.reason),
                "crashCount": start.crashCount,
                "consecutiveCrashCount": start.consecutiveCrashCount,
                "resetCount": start.resetCount,
                "consecutiveResetCount": start.consecutiveResetCount,
                "hasCoreDump": False,
            }
        )

    async def get_led(request: Request) -> Response:
        return JSONBytes({"brightness": svc.config.current.led.brightness, "max_brightness": 100})

    async def put_led(request: Request) -> Response:
        doc = await read_json(request, 64)
        value = doc.get("brightness") if isinstance(doc, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
            raise ApiError(400, "Missing or invalid brightness parameter: an integer 0-100")
        if value > 100:
            raise ApiError(400, "Brightness value out of range: 0-100")
        await svc.config.update(led=LedConfig(brightness=value))
        return success("LED brightness updated successfully")

    async def get_ade7953(request: Request) -> Response:
        return JSONBytes(svc.config.current.ade7953.model_dump())

    async def put_ade7953(request: Request) -> Response:
        doc = await read_json(request, 1024)
        require_fields(doc, Ade7953Calibration)
        await svc.config.update(ade7953=validate(Ade7953Calibration, doc))
        return success("ADE7953 configuration updated successfully")

    async def patch_ade7953(request: Request) -> Response:
        doc = await read_json(request, 1024)
        if not isinstance(doc, dict) or not set(doc) & set(Ade7953Calibration.model_fields):
            raise ApiError(400, "body: PATCH needs at least one ADE7953 configuration field")
        current = svc.config.current.ade7953.model_dump()
        await svc.config.update(ade7953=validate(Ade7953Calibration, merge(current, doc)))
        return success("ADE7953 configuration updated successfully")

    async def reset_ade7953(request: Request) -> Response:
        await svc.config.update(ade7953=Ade7953Calibration())
        return success("ADE7953 configuration reset successfully")

    E = Endpoint
    cpu_query = (
        Query("lastSeconds", {"type": "integer", "minimum": 1}, "seconds of history (max 3600)"),
        Query("core", {"type": "string", "enum": ["0", "1", "both"]}, "which CPU (default both)"),
    )
    return [
        E("GET", "/system/cpu/samples", cpu_samples, "Per-CPU load history (host CPUs 0 and 1)",
          "System", response=CpuSamples, query=cpu_query, errors=(400,)),
        E("GET", "/system/safe-mode", safe_mode, "Safe mode (never active here)", "System",
          response=SafeMode),
        E("POST", "/system/safe-mode/clear", safe_mode_clear, "Leave safe mode (never active)",
          "System"),
        E("GET", "/system/secrets", secrets, "Cloud provisioning (community mode: none)", "System",
          response=Secrets),
        E("POST", "/ota/upload", ota_upload, "Firmware upload (not available)", "OTA Updates",
          errors=(501,)),
        E("GET", "/ota/status", ota_status, "Firmware update state (always idle)", "OTA Updates",
          response=OtaStatus),
        E("POST", "/ota/rollback", ota_rollback, "Firmware rollback (never possible)",
          "OTA Updates", errors=(400,)),
        E("POST", "/network/wifi/reset", network_by_os, "WiFi reset (not available)", "Network",
          errors=(501,)),
        E("POST", "/network/wifi/credentials", network_by_os, "WiFi credentials (not available)",
          "Network", errors=(501,)),
        E("GET", "/network/config", network_config, "Addressing (DHCP: managed by the OS)",
          "Network", response=NetworkConfiguration),
        E("PUT", "/network/config", network_by_os, "Set addressing (not available)", "Network",
          errors=(501,)),
        E("PATCH", "/network/config", network_by_os, "Set addressing (not available)", "Network",
          errors=(501,)),
        E("POST", "/network/config/reset", network_by_os, "Reset addressing (not available)",
          "Network", errors=(501,)),
        E("GET", "/crash/info", crash_info, "How the previous run ended", "Crash Monitor",
          response=CrashInfo,
          description="Power on: first start or host rebooted; Software: clean stop or restart; "
          "Exception/panic: the previous run ended without a clean stop (crash, kill, OOM)."),
        E("GET", "/crash/dump", crash_dump, "Core dump (none)", "Crash Monitor", errors=(404,)),
        E("POST", "/crash/clear", crash_clear, "Clear the core dump (none)", "Crash Monitor",
          errors=(404,)),
        E("GET", "/mqtt/cloud-services", cloud_services, "Cloud services (community mode: off)",
          "MQTT", response=CloudServices),
        E("PUT", "/mqtt/cloud-services", set_cloud_services, "Cloud services (not available)",
          "MQTT", body=CloudServices, errors=(403,)),
        E("GET", "/led/brightness", get_led, "Stored LED brightness (no LED on Linux)", "LED",
          response=LedBrightness),
        E("PUT", "/led/brightness", put_led, "Store the LED brightness (no effect)", "LED",
          body=LedConfig, errors=(400, 413)),
        E("GET", "/ade7953/config", get_ade7953, "ADE7953 calibration registers", "ADE7953",
          response=Ade7953Calibration),
        E("PUT", "/ade7953/config", put_ade7953, "Replace the calibration (all 19 values)",
          "ADE7953", body=Ade7953Calibration, errors=(400, 413),
          description="Stored as opaque calibration: the simulator source does not use it."),
        E("PATCH", "/ade7953/config", patch_ade7953, "Change some calibration values", "ADE7953",
          body=dict[str, int], errors=(400, 413)),
        E("POST", "/ade7953/config/reset", reset_ade7953, "Calibration back to defaults",
          "ADE7953"),
    ]  # fmt: skip
