"""`/modbus/*`: the register map (JSON and CSV download), the server's settings and its status.

Not a device endpoint: the device's Modbus server has no settings and its integrations page links a
static, stale CSV (reference integrations.md 1.9). Here the map is generated from `register_map()` for
the configured channel count, so the download always matches what the server answers.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import cache

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.endpoints.settings import ConfigSection, config_endpoints
from homemeter.api.responses import JSONBytes
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.modbus import ModbusConfig
from homemeter.integrations.modbus.register_map import register_map_csv, register_map_json
from homemeter.integrations.modbus.server import ModbusStatus

TAG = "Modbus"
BODY_LIMIT = 256  # five short fields; the device has no such endpoint to copy a limit from
CSV_NAME = "homemeter-modbus-registers.csv"
SETTINGS = ConfigSection(
    "modbus", "/modbus", "Modbus", "Modbus server", ModbusConfig, BODY_LIMIT, TAG,
    applies="Applied live: a new port or address restarts the server. If it cannot be bound: 409, "
    "and the previous server and settings stay. --bind and --modbus-port override the stored "
    "settings at start until the field is changed here; GET /modbus/status shows the address in use.",
    errors=(400, 409, 413),
)  # fmt: skip


class RegisterRow(BaseModel):
    """One register of the map (`register_map_json` rows; the CSV has the same columns)."""

    address: int
    name: str
    type: str
    unit: str
    decimals: int
    description: str


@cache
def _map_json(channels: int) -> bytes:
    return orjson.dumps(register_map_json(channels))


@cache
def _map_csv(channels: int) -> str:
    return register_map_csv(channels)


def _status(svc: Services) -> ModbusStatus:
    """The component's status in the shape this endpoint has always had."""
    status = svc.status("modbus")
    cfg = svc.config.current.modbus
    if status is None:
        return ModbusStatus("stopped", cfg.bind, cfg.port, 0, 0, 0, 0)
    d, n = status.details, status.counters
    return ModbusStatus(
        "listening" if d.get("listening") else "stopped",
        d.get("bind", cfg.bind),
        d.get("port", cfg.port),
        d.get("clients", 0),
        n.get("requests", 0),
        n.get("errors", 0),
        n.get("rejected", 0),
    )


def endpoints(svc: Services) -> list[Endpoint]:
    async def get_map(request: Request) -> Response:
        return JSONBytes(_map_json(svc.channel_count))

    async def get_map_csv(request: Request) -> Response:
        return Response(
            _map_csv(svc.channel_count),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{CSV_NAME}"'},
        )

    async def get_status(request: Request) -> Response:
        return JSONBytes(asdict(_status(svc)))

    E = Endpoint
    return [
        E(
            "GET",
            "/modbus/register-map",
            get_map,
            "Modbus register map",
            TAG,
            response=list[RegisterRow],
            description="Every register served for the configured channel count, in address order "
            "(0-based PDU addresses, FC 03, unit id 1, big-endian, float32 high word first).",
        ),
        E(
            "GET",
            "/modbus/register-map.csv",
            get_map_csv,
            "Modbus register map as a CSV download",
            TAG,
            media_type="text/csv",
        ),
        *config_endpoints(svc, SETTINGS),
        E(
            "GET",
            "/modbus/status",
            get_status,
            "Modbus server state and counters",
            TAG,
            response=ModbusStatus,
            description="The address actually listened on (after command-line overrides), connected "
            "clients, requests answered with data, errors, and connections refused over maxClients.",
        ),
    ]
