"""A stand-in EnergyMe-Home device: the REST paths an import reads, behind the device's Digest auth.

Its Digest is the device's (reference rest-api.md 1.1): realm `EnergyMe-Home`, MD5, qop=auth, a
fresh nonce on every 401 and no nonce bookkeeping: any nonce passes when the response hash is
right. It serves the configuration backup, the channel list and each channel's meter-values from
`live` (mutable: a test lets the device's energy grow), and its filesystem from `files` (path from
the root -> content) through `list-files` and `files/...`. `fail_channel` answers that channel's
meter-values with 500 once, `fail_file` that file: the device going away in the middle of an import.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from homemeter.api.digest_auth import parse_digest_header
from homemeter.meter.quantities import ENERGY_QUANTITIES
from homemeter.meter.snapshot import EnergyTotals
from tests.loopback import free_port, wait_until

REALM = "EnergyMe-Home"
DEVICE_PASSWORD = "energyme-bench-1"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class StandInDevice:
    backup: dict[str, Any]
    live: dict[int, EnergyTotals]
    password: str = DEVICE_PASSWORD
    fail_channel: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    fail_file: str | None = None
    requests: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def authorised(self, request: Request) -> bool:
        params = parse_digest_header(request.headers.get("authorization", "")) or {}
        if params.get("username") != "admin" or params.get("realm") != REALM:
            return False
        ha1 = _md5(f"admin:{REALM}:{self.password}")
        ha2 = _md5(f"{request.method}:{params.get('uri', '')}")
        parts = (ha1, params.get("nonce"), params.get("nc"), params.get("cnonce"), params.get("qop"), ha2)
        return params.get("response") == _md5(":".join(str(p) for p in parts))

    async def guard(self, request: Request) -> Response | None:
        self.requests.append(str(request.url.path) + ("?" + request.url.query if request.url.query else ""))
        if self.authorised(request):
            return None
        nonce, opaque = os.urandom(16).hex(), os.urandom(16).hex()
        challenge = f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="{opaque}"'
        return PlainTextResponse(
            "The password is incorrect. Please try again.", 401, {"WWW-Authenticate": challenge}
        )

    async def backup_configuration(self, request: Request) -> Response:
        return await self.guard(request) or JSONResponse(self.backup)

    async def channels(self, request: Request) -> Response:
        count = sum(1 for key in self.backup["nvs"]["channels_ns"] if key.startswith("label_"))
        return await self.guard(request) or JSONResponse([{"index": i} for i in range(count)])

    async def meter_values(self, request: Request) -> Response:
        refusal = await self.guard(request)
        if refusal is not None:
            return refusal
        index = int(request.query_params["index"])
        if index == self.fail_channel:
            self.fail_channel = None
            return JSONResponse({"success": False, "error": "Error fetching single meter values"}, 500)
        totals = self.live.get(index, EnergyTotals())
        body = {"voltage": 230.1, "current": 1.5, "activePower": 300.0}
        body.update({q.key: getattr(totals, q.attr) for q in ENERGY_QUANTITIES})
        return JSONResponse(body)

    async def list_files(self, request: Request) -> Response:
        """Paths relative to `folder`, recursive; `null` for a folder that does not exist."""
        refusal = await self.guard(request)
        if refusal is not None:
            return refusal
        prefix = request.query_params.get("folder", "").strip("/") + "/"
        found = {p.removeprefix(prefix): len(c) for p, c in self.files.items() if p.startswith(prefix)}
        return JSONResponse(found or None)

    async def file(self, request: Request) -> Response:
        refusal = await self.guard(request)
        if refusal is not None:
            return refusal
        path = request.path_params["path"]  # %2F arrives decoded, as on the device
        if path == self.fail_file:
            self.fail_file = None
            return JSONResponse({"success": False, "error": "Failed to create response"}, 500)
        if path not in self.files:
            return JSONResponse({"success": False, "error": "File not found"}, 404)
        return Response(self.files[path], media_type="application/octet-stream")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/backup/configuration", self.backup_configuration),
                Route("/api/v1/ade7953/channel", self.channels),
                Route("/api/v1/ade7953/meter-values", self.meter_values),
                Route("/api/v1/list-files", self.list_files),
                Route("/api/v1/files/{path:path}", self.file),
            ]
        )


@contextmanager
def running(device: StandInDevice) -> Iterator[StandInDevice]:
    """uvicorn in a thread on a free loopback port; stopped (should_exit) at the end."""
    server = uvicorn.Server(uvicorn.Config(device.app(), host="127.0.0.1", port=device.port, log_config=None))
    thread = threading.Thread(target=server.run, name="stand-in-device", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, what="stand-in device started")
        yield device
    finally:
        server.should_exit = True
        thread.join(10)
