"""`/health`, `/system/*` and `/firmware/update-info`: what the service is, how it runs, restarts."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import ApiError, JSONBytes, read_json, success, validate
from homemeter.api.routing import Endpoint, Query
from homemeter.api.services import Services
from homemeter.api.system_info import SystemInfo, SystemInfoReader
from homemeter.config.app import AppConfig
from homemeter.store.files import FILES_DIR
from homemeter.system import host
from homemeter.system.issues import GLOBAL
from homemeter.timestamps import iso_time

__all__ = ["endpoints"]

TAG = "System"
RESTART_LOCKED = (
    "Failed to initiate restart. Another restart may already be in progress or restart is currently locked"
)
TIME_USAGE = 'Invalid JSON. Required: {"unixTime": <unix_seconds>}'
TIME_RANGE = (1_000_000_000, 4_102_444_800)  # the device's valid range: 2001..2100
# Python level names -> the device's log statistics keys (nothing logs below DEBUG: verbose).
LOG_KEYS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error", "CRITICAL": "fatal"}


class Health(BaseModel):
    status: str
    uptime: int  # ms, as the device (its swagger says seconds; the code sends ms)
    timestamp: str


class Ade7953Stats(BaseModel):
    """The device's fields, counted by the ADE7953 driver (0 on other sources), plus per cause."""

    totalInterrupts: int
    totalHandledInterrupts: int
    zxInterrupts: int = Field(description="0: the zero-crossing interrupt is not enabled (PERIOD is read)")
    servicePasses: int
    unhandledInterrupts: int
    readingCount: int
    readingCountFailure: int
    cycEndInterrupts: int = Field(description="homemeter: line-cycle windows ended")
    resetInterrupts: int = Field(description="homemeter: the chip reset itself (supply glitch)")
    crcInterrupts: int = Field(description="homemeter: configuration checksum changes")


class MqttStats(BaseModel):
    messagesPublished: int
    messagesPublishedError: int
    connections: int
    connectionErrors: int
    meterPointsDropped: int
    gridPointsDropped: int


class PublishStats(BaseModel):
    messagesPublished: int
    messagesPublishedError: int


class RequestCounts(BaseModel):
    requests: int
    requestsError: int


class UploadStats(BaseModel):
    uploadCount: int
    uploadCountError: int


class WifiStats(BaseModel):
    connection: int
    connectionError: int


class LogStats(BaseModel):
    verbose: int
    debug: int
    info: int
    warning: int
    error: int
    fatal: int
    dropped: int


class Statistics(BaseModel):
    """Nested and all integers, as the device's code (its swagger shows a flat object)."""

    ade7953: Ade7953Stats
    mqtt: MqttStats
    customMqtt: PublishStats
    modbus: RequestCounts
    influxdb: UploadStats
    wifi: WifiStats
    webServer: RequestCounts
    log: LogStats


class TimeInfo(BaseModel):
    synced: bool
    unixTime: int
    isoTime: str


class SetTime(BaseModel):
    unixTime: int = Field(ge=TIME_RANGE[0], le=TIME_RANGE[1], description="Unix seconds")


class IssueItem(BaseModel):
    code: str
    channel: int | None = None  # only for channel-scoped issues
    state: str
    severity: str
    firstSeenUnix: int
    lastChangeUnix: int
    occurrences: int
    message: str


class Issues(BaseModel):
    issues: list[IssueItem]


class IssueAck(BaseModel):
    """`{"all": true}`, or `{"code": ..., "channel": n}` (channel omitted: a global issue)."""

    model_config = ConfigDict(extra="ignore")
    all: StrictBool = False
    code: StrictStr | None = None
    channel: StrictInt | None = Field(None, ge=0, le=255)


class ComponentState(BaseModel):
    """`ComponentStatus` as JSON: one shape for every component."""

    state: str = Field(description="stopped, disabled, starting, running or degraded")
    since: float = Field(description="epoch seconds of the last state change")
    lastError: str | None
    counters: dict[str, int]
    details: dict[str, Any]


class UpdateInfo(BaseModel):
    currentVersion: str
    buildDate: str
    isLatest: bool


CONFIRM = Query(
    "confirm",
    {"type": "boolean"},
    "must be true: the reset wipes the configuration and the energy totals",
    required=True,
)


def _counter(svc: Services, component: str, counter: str) -> int:
    """A component's counter, 0 when this build has no such component or it counted nothing yet."""
    status = svc.status(component)
    return status.counters.get(counter, 0) if status is not None else 0


def endpoints(svc: Services) -> list[Endpoint]:  # noqa: C901 - one closure per endpoint
    info = SystemInfoReader(svc)

    async def health(request: Request) -> Response:
        uptime_ms = int((time.monotonic() - svc.started_monotonic) * 1000)
        return JSONBytes({"status": "ok", "uptime": uptime_ms, "timestamp": iso_time(time.time())})

    async def system_info(request: Request) -> Response:
        # psutil and /sys reads take a few ms: off the event loop, which also samples the meter.
        return JSONBytes((await asyncio.to_thread(info.read)).model_dump())

    async def statistics(request: Request) -> Response:
        snap, counts = svc.meter.latest, svc.logs.counts
        logs = {key: counts.get(name, 0) for name, key in LOG_KEYS.items()}
        logs["verbose"] = sum(n for name, n in counts.items() if name not in LOG_KEYS)
        zero_mqtt = dict.fromkeys(MqttStats.model_fields, 0)
        return JSONBytes(
            {
                "ade7953": {
                    # Counted by the ADE7953 driver; the other sources have no chip interrupts: 0.
                    **{key: _counter(svc, "ade7953", key) for key in Ade7953Stats.model_fields},
                    "readingCount": snap.readings,
                    "readingCountFailure": snap.failures,
                },
                "mqtt": zero_mqtt,  # the publishers arrive in a later release
                "customMqtt": {
                    "messagesPublished": _counter(svc, "mqtt", "published"),
                    "messagesPublishedError": _counter(svc, "mqtt", "publishErrors"),
                },
                "modbus": {
                    "requests": _counter(svc, "modbus", "requests"),
                    "requestsError": _counter(svc, "modbus", "errors"),
                },
                "influxdb": {
                    "uploadCount": _counter(svc, "influxdb", "uploads"),
                    "uploadCountError": _counter(svc, "influxdb", "uploadErrors"),
                },
                "wifi": {"connection": 0, "connectionError": 0},  # the host manages the network
                "webServer": {"requests": svc.stats.requests, "requestsError": svc.stats.errors},
                "log": {**logs, "dropped": svc.log_control.dropped},
            }
        )

    async def restart(request: Request) -> Response:
        if not svc.restart.request("restart"):
            raise ApiError(423, RESTART_LOCKED)
        return JSONBytes(
            {"success": True, "message": "System restart initiated"},
            background=BackgroundTask(svc.restart.proceed),
        )

    async def factory_reset(request: Request) -> Response:
        if request.query_params.get("confirm") != "true":
            raise ApiError(
                400,
                "confirm: a factory reset wipes the configuration, the energy totals and the "
                "files (the password and device id are kept); repeat with ?confirm=true",
            )
        if svc.restart.pending:
            raise ApiError(423, RESTART_LOCKED)
        await svc.config.replace(AppConfig(channels=svc.factory_channels(svc.channel_count)))
        await svc.control.reset_energy()
        await asyncio.to_thread(_empty_dir, svc.data_dir / FILES_DIR)
        svc.logs.clear()
        # The wipe is done and applied live; the restart starts everything afresh, like the device.
        svc.restart.request("factory-reset")
        return JSONBytes(
            {"success": True, "message": "Factory reset initiated"},
            background=BackgroundTask(svc.restart.proceed),
        )

    async def get_time(request: Request) -> Response:
        now = time.time()
        synced = host.clock_synced()  # one syscall
        return JSONBytes({"synced": synced, "unixTime": int(now), "isoTime": iso_time(now)})

    async def set_time(request: Request) -> Response:
        try:
            doc: Any = await read_json(request, 64)
        except ApiError as err:
            raise ApiError(err.status, TIME_USAGE if err.status == 400 else err.message) from err
        value = doc.get("unixTime") if isinstance(doc, dict) else None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError(400, TIME_USAGE)
        if not TIME_RANGE[0] <= value <= TIME_RANGE[1]:
            raise ApiError(400, "Failed to set time. Value out of valid range.")
        raise ApiError(
            403,
            "The host clock belongs to the operating system: homemeter does not set it. "
            "Use NTP (e.g. systemd-timesyncd) or 'timedatectl set-time' on the host",
        )

    async def components(request: Request) -> Response:
        return JSONBytes({name: s.to_json() for name, s in svc.components.statuses().items()})

    async def issues(request: Request) -> Response:
        return JSONBytes({"issues": [i.to_json() for i in svc.issues.issues()]})

    async def ack_issues(request: Request) -> Response:
        body = validate(IssueAck, await read_json(request, 128))
        if body.all:
            return success(f"Acknowledged {svc.issues.ack_all()} issue(s)")
        if body.code is None:
            raise ApiError(400, "Missing 'code' (or 'all') parameter")
        channel = GLOBAL if body.channel is None else body.channel
        if not svc.issues.ack(body.code, channel):
            raise ApiError(404, "No such issue instance")
        return success("Issue acknowledged")

    async def update_info(request: Request) -> Response:
        build = host.build()
        return JSONBytes({"currentVersion": build.version, "buildDate": build.date, "isLatest": True})

    E = Endpoint
    return [
        E("GET", "/health", health, "Liveness (no authentication)", TAG, response=Health, public=True),
        E(
            "GET",
            "/system/info",
            system_info,
            "Service, host and build facts",
            TAG,
            response=SystemInfo,
            description="The device's document with host analogues: heap is system RAM, littlefs "
            "the data directory's filesystem, wifi the default-route interface. Facts the host does "
            "not have are 0, or null where a number would mislead (temperature, RSSI).",
        ),
        E("GET", "/system/statistics", statistics, "Counters since start", TAG, response=Statistics),
        E(
            "POST",
            "/system/restart",
            restart,
            "Restart the service",
            TAG,
            errors=(423,),
            description="Answers first, then stops cleanly (energy saved) and starts again with "
            "the same command line. 423 while a restart is already under way.",
        ),
        E(
            "POST",
            "/system/factory-reset",
            factory_reset,
            "Wipe configuration and energy, then restart",
            TAG,
            query=(CONFIRM,),
            errors=(400, 423),
            description="Restores the default configuration and zeroes the energy totals and the "
            "stored files; the password and the device id are kept. Only with ?confirm=true (the "
            "device needs no confirmation; a Linux service does not wipe data on one click).",
        ),
        E("GET", "/system/time", get_time, "Host clock", TAG, response=TimeInfo),
        E(
            "POST",
            "/system/time",
            set_time,
            "Set the clock (refused: the host's)",
            TAG,
            body=SetTime,
            errors=(400, 403, 413),
            description="A valid request is answered 403: the operating system owns the clock.",
        ),
        E("GET", "/system/issues", issues, "Detected problems", TAG, response=Issues),
        E(
            "GET",
            "/system/components",
            components,
            "Status of every component",
            TAG,
            response=dict[str, ComponentState],
            description="Everything that runs beside the meter (energy persister, Modbus, MQTT, ...): "
            "state, since when, last error, counters and details, in start order.",
        ),
        E(
            "POST",
            "/system/issues/ack",
            ack_issues,
            "Acknowledge issues",
            TAG,
            body=IssueAck,
            errors=(400, 404, 413),
        ),
        E(
            "GET",
            "/firmware/update-info",
            update_info,
            "Installed version",
            TAG,
            response=UpdateInfo,
            description="isLatest is always true: this release does not check for newer ones.",
        ),
    ]


def _empty_dir(path: Path) -> None:
    """Remove everything inside `path` (not following symlinks), keeping the directory."""
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
