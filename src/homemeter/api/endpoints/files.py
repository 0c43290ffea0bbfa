"""Files: list, download, upload and delete inside `<data_dir>/files/` (the device's filesystem root)."""

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
from homemeter.store.files import FILES_DIR, FileArea, InsufficientStorage, UnsafePath

TAG = "Files"
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


def endpoints(svc: Services) -> list[Endpoint]:
    area = FileArea(svc.data_dir / FILES_DIR)

    def resolve(name: str) -> None:
        try:
            area.resolve(name)
        except UnsafePath as err:
            raise ApiError(400, str(err)) from err

    async def list_files(request: Request) -> Response:
        folder = request.query_params.get("folder")
        try:
            listing = await asyncio.to_thread(area.listing, folder)
        except UnsafePath as err:
            raise ApiError(400, str(err)) from err
        return JSONBytes(listing)  # null for a missing folder, as the device (the UI reads it as {})

    async def get_file(request: Request) -> Response:
        name = request.path_params["filepath"]
        resolve(name)
        path = area.find(name)
        if path is None:
            raise ApiError(404, "File not found")
        return _file_response(request, name, path)

    async def upload_file(request: Request) -> Response:
        name = request.path_params["filepath"]
        resolve(name)
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
        resolve(path)
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
            'Content-Encoding). History files carry ETag "size-<bytes>".',
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
