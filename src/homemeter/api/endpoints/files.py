"""Files: list, download, upload and delete inside `<data_dir>/files/` (the device's filesystem root).

The device's energy history files are generated from the hourly archive on request
(`store/energy_files.py`) and laid over the file area: they are listed and served under `energy/`
next to any real files there, and take precedence over a real file of the same name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from homemeter.api.responses import ApiError, JSONBytes, read_json, success
from homemeter.api.routing import Endpoint, Query
from homemeter.api.services import Services
from homemeter.api.uploads import uploaded_file
from homemeter.store.energy_files import FOLDER as ENERGY
from homemeter.store.energy_files import EnergyFiles
from homemeter.store.files import FILES_DIR, FileArea, InsufficientStorage, UnsafePath
from homemeter.store.history import HistoryArchive

TAG = "Files"
ENERGY_FOLDERS = frozenset({ENERGY, f"{ENERGY}/daily", f"{ENERGY}/monthly", f"{ENERGY}/yearly"})
MAX_UPLOAD = 16 * 1024 * 1024
CHUNK = 64 * 1024

# By extension, as the device; `.gz` stays application/gzip without Content-Encoding (the
# dashboard inflates history archives itself).
MEDIA_TYPES = {
    ".json": "application/json",
    ".txt": "text/plain",
    ".log": "text/plain",
    ".csv": "text/csv",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".html": "text/html",
    ".css": "text/css",
    ".js": "application/javascript",
    ".xml": "text/xml",
    ".bin": "application/octet-stream",
}


class DeleteFile(BaseModel):
    path: str


def _history_file(name: str) -> bool:
    """Files the dashboard caches: revalidated cheaply with `ETag: "size-<bytes>"`."""
    rel = name.lstrip("/")
    return rel.endswith((".csv", ".csv.gz")) or rel.startswith(("energy/monthly/", "energy/yearly/"))


def _media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _file_response(request: Request, name: str, path: Path) -> Response:
    stat = path.stat()
    disposition = "attachment" if "download" in request.query_params else "inline"
    headers = {"Content-Disposition": f"{disposition}; filename*=utf-8''{quote(path.name)}"}
    if _history_file(name):
        etag = f'"size-{stat.st_size}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        headers |= {"ETag": etag, "Cache-Control": "no-cache"}
    return FileResponse(path, headers=headers, media_type=_media_type(path), stat_result=stat)


def _energy_files(svc: Services) -> EnergyFiles | None:
    archive = svc.components.get("history")
    return archive.files if isinstance(archive, HistoryArchive) else None


def _in_energy(name: str) -> bool:
    rel = name.strip("/")
    return rel == ENERGY or rel.startswith(f"{ENERGY}/")


async def _generated(svc: Services, folder: str) -> dict[str, int]:
    """The generated history files below `folder`, relative to it."""
    files = _energy_files(svc)
    rel = folder.strip("/")
    if files is None or not (rel == "" or _in_energy(rel)):
        return {}
    prefix = f"{rel}/" if rel else ""
    listing = {f"{ENERGY}/{name}": size for name, size in (await files.listing()).items()}
    return {name.removeprefix(prefix): size for name, size in listing.items() if name.startswith(prefix)}


async def _energy_response(svc: Services, request: Request, name: str) -> Response | None:
    """A generated history file (304 when the client's copy is current); None if it is not one."""
    files = _energy_files(svc)
    rel = name.strip("/").removeprefix(f"{ENERGY}/")
    found = await files.read(rel) if files is not None else None
    if found is None:
        return None
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers={"ETag": found.etag})
    disposition = "attachment" if "download" in request.query_params else "inline"
    base = rel.rsplit("/", 1)[-1]
    headers = {
        "Content-Disposition": f"{disposition}; filename*=utf-8''{quote(base)}",
        "ETag": found.etag,
        "Cache-Control": "no-cache",
    }
    media_type = "application/gzip" if base.endswith(".gz") else "text/csv"
    return Response(found.content, media_type=media_type, headers=headers)


async def _listing(svc: Services, area: FileArea, folder: str) -> dict[str, int] | None:
    """The file area's listing with the generated history files laid over it."""
    try:
        listing = await asyncio.to_thread(area.listing, folder)
    except UnsafePath as err:
        raise ApiError(400, str(err)) from err
    generated = await _generated(svc, folder)
    # The device creates its three history folders at boot: they exist even when empty.
    if listing is None and not generated and folder.strip("/") not in ENERGY_FOLDERS:
        return None
    return {**(listing or {}), **generated}


def _resolve(area: FileArea, name: str) -> None:
    try:
        area.resolve(name)
    except UnsafePath as err:
        raise ApiError(400, str(err)) from err


def endpoints(svc: Services) -> list[Endpoint]:
    area = FileArea(svc.data_dir / FILES_DIR)

    async def list_files(request: Request) -> Response:
        folder = request.query_params.get("folder") or ""
        # null for a missing folder, as the device (the UI reads it as {})
        return JSONBytes(await _listing(svc, area, folder))

    async def get_file(request: Request) -> Response:
        name = request.path_params["filepath"]
        _resolve(area, name)
        generated = await _energy_response(svc, request, name) if _in_energy(name) else None
        if generated is not None:
            return generated
        path = area.find(name)
        if path is None:
            raise ApiError(404, "File not found")
        return _file_response(request, name, path)

    async def upload_file(request: Request) -> Response:
        name = request.path_params["filepath"]
        _resolve(area, name)
        async with uploaded_file(request, MAX_UPLOAD) as upload:
            upload.file.seek(0)
            chunks = iter(lambda: upload.file.read(CHUNK), b"")
            try:
                await asyncio.to_thread(area.write, name, chunks)
            except InsufficientStorage as err:
                raise ApiError(507, str(err)) from err
        return success("File uploaded successfully")

    async def delete_file(request: Request) -> Response:
        doc: Any = await read_json(request, 512)
        path = doc.get("path") if isinstance(doc, dict) else None
        if not isinstance(path, str):
            raise ApiError(400, "Missing or invalid 'path' field in JSON body")
        _resolve(area, path)
        if not area.delete(path):
            raise ApiError(404, f"File not found: {path}"[:63])
        return success("File deleted successfully")

    E = Endpoint
    return [
        E(
            "GET",
            "/list-files",
            list_files,
            "Files and sizes, recursive",
            TAG,
            response=dict[str, int] | None,
            query=(Query("folder", {"type": "string"}, "sub-folder; keys are relative to it"),),
            errors=(400,),
            description="Relative path -> size in bytes, at most 5 levels deep; null when the "
            "folder does not exist.",
        ),
        E(
            "GET",
            "/files/{filepath:path}",
            get_file,
            "Download a file",
            TAG,
            media_type="application/octet-stream",
            query=(Query("download", {"type": "string"}, "present: Content-Disposition attachment"),),
            errors=(304, 400, 404),
            description="Content-Type by extension; .gz files are sent as stored (no "
            'Content-Encoding). History files carry ETag "size-<bytes>". energy/daily/YYYY-MM-DD.csv '
            "(today), energy/monthly/YYYY-MM.csv.gz (this month's finished days) and "
            "energy/yearly/YYYY.csv.gz (finished months) are generated from the hourly archive "
            "with their own ETag (304 on If-None-Match).",
        ),
        E(
            "POST",
            "/files/{filepath:path}",
            upload_file,
            "Upload (create or replace) a file",
            TAG,
            errors=(400, 411, 413, 507),
            description="multipart/form-data with one file part; the target is the URL path.",
        ),
        E(
            "POST",
            "/delete-file",
            delete_file,
            "Delete a file",
            TAG,
            body=DeleteFile,
            errors=(400, 404, 413),
        ),
    ]
