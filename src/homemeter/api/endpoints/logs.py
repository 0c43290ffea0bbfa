"""`/logs*`: live log levels, the kept log lines, and UDP syslog forwarding."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from homemeter.api.responses import ApiError, JSONBytes, read_json, success
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.udp_log import UdpLogConfig
from homemeter.logs.control import LEVELS, LevelName, LogControl, device_level
from homemeter.logs.ring import LogEntry
from homemeter.timestamps import iso_time

TAG = "Logging"
PYTHON_LEVELS = logging.getLevelNamesMapping()
INVALID_LEVEL = "Invalid log level specified. Valid levels: " + ", ".join(LEVELS)


class LogLevels(BaseModel):
    """PUT and PATCH alike take either field or both (as the device)."""

    print: LevelName | None = None
    save: LevelName | None = None


class CurrentLogLevels(BaseModel):
    print: LevelName
    save: LevelName


def log_line(entry: LogEntry, started: float, pid: int) -> str:
    """The device's line: `[time] [elapsed ms] [LEVEL  ] [where] [file:function] message`.

    The log page splits on "] " and needs six parts; the device's `Core N` is our process id.
    """
    elapsed = max(0, int((entry.created - started) * 1000))
    level = device_level(PYTHON_LEVELS.get(entry.level, 0))
    message = entry.message.replace("\n", "\\n")  # one entry per line
    return (
        f"[{iso_time(entry.created)}] [{elapsed} ms] [{level:<7}] [pid {pid}] "
        f"[{entry.logger}:{entry.function}] {message}"
    )


def _levels(control: LogControl, doc: Any) -> tuple[LevelName, LevelName]:
    """Both levels after the change; nothing is applied unless every given level is valid."""
    if not isinstance(doc, dict) or ("print" not in doc and "save" not in doc):
        raise ApiError(400, "At least one of 'print' or 'save' level must be specified")
    printed, saved = doc.get("print", control.print_level), doc.get("save", control.save_level)
    if printed not in LEVELS or saved not in LEVELS:
        raise ApiError(400, INVALID_LEVEL)
    return printed, saved


def endpoints(svc: Services) -> list[Endpoint]:
    control = svc.log_control

    async def get_levels(request: Request) -> Response:
        return JSONBytes({"print": control.print_level, "save": control.save_level})

    async def put_levels(request: Request) -> Response:
        printed, saved = _levels(control, await read_json(request, 64))
        control.set_levels(printed, saved)
        return success(f"Log levels updated: print={printed} save={saved}")

    async def patch_levels(request: Request) -> Response:
        printed, saved = _levels(control, await read_json(request, 64))
        control.set_levels(printed, saved)
        return success(f"Log levels partially updated: print={printed} save={saved}")

    async def get_logs(request: Request) -> Response:
        started = time.time() - (time.monotonic() - svc.started_monotonic)
        pid = os.getpid()
        lines = [log_line(e, started, pid) for e in list(svc.logs.entries)]
        # The device answers 404 for an empty log file; pollers expect 200, so an empty body.
        return PlainTextResponse("".join(f"{line}\n" for line in lines))

    async def clear_logs(request: Request) -> Response:
        svc.logs.clear()
        return success("Logs cleared successfully")

    async def get_udp(request: Request) -> Response:
        return JSONBytes(svc.config.current.udpLog.model_dump())

    async def put_udp(request: Request) -> Response:
        doc = await read_json(request, 256)
        if not isinstance(doc, dict) or "destination" not in doc:
            raise ApiError(400, "Missing 'destination' field")
        current = svc.config.current.udpLog
        try:
            config = UdpLogConfig(destination=doc["destination"], port=doc.get("port", current.port))
        except ValidationError as err:
            bad = {e["loc"][0] for e in err.errors()}
            raise ApiError(
                400, "port: an integer 1..65535" if "port" in bad else "Invalid IP address format"
            ) from err
        await svc.config.update(udpLog=config)
        return success("UDP destination updated successfully")

    E = Endpoint
    return [
        E("GET", "/logs/level", get_levels, "Log levels", TAG, response=CurrentLogLevels),
        E(
            "PUT",
            "/logs/level",
            put_levels,
            "Set log levels",
            TAG,
            body=LogLevels,
            errors=(400, 413),
            description="print: console; save: the lines GET /logs shows and syslog forwards. "
            "Applies at once, until the service restarts (then --log-level applies).",
        ),
        E(
            "PATCH",
            "/logs/level",
            patch_levels,
            "Set log levels",
            TAG,
            body=LogLevels,
            errors=(400, 413),
        ),
        E(
            "GET",
            "/logs",
            get_logs,
            "Kept log lines",
            TAG,
            media_type="text/plain",
            description="The newest lines, oldest first, one per line in the device's format.",
        ),
        E("POST", "/logs/clear", clear_logs, "Forget the kept log lines", TAG),
        E(
            "GET",
            "/logs-udp-destination",
            get_udp,
            "Syslog forwarding target",
            TAG,
            response=UdpLogConfig,
        ),
        E(
            "PUT",
            "/logs-udp-destination",
            put_udp,
            "Forward log lines as UDP syslog",
            TAG,
            body=UdpLogConfig,
            errors=(400, 413),
            description="RFC 5424 datagrams to destination:port (port optional, default 514); "
            "0.0.0.0 stops forwarding. Stored in the configuration.",
        ),
    ]
