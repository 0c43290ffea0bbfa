"""Backup and Restore: the configuration as JSON, the data directory as a tar (store/backup.py).

Restores apply live, without the device's restart: the configuration through `ConfigService` (every
listener sees it), files into the file area, energy totals into the meter, then saved to disk.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from homemeter import __version__
from homemeter.api.responses import ApiError, JSONBytes, success
from homemeter.api.routing import Endpoint, Query
from homemeter.api.services import Services
from homemeter.api.uploads import check_length, is_multipart, uploaded_file
from homemeter.config.app import AppConfig
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.backup import (
    ArchiveContent,
    BackupRejected,
    check_document,
    config_document,
    file_targets,
    install_files,
    read_archive,
    restore_config,
    write_archive,
)
from homemeter.store.files import FILES_DIR, FileArea

MAX_CONFIG_BACKUP = 256 * 1024
MAX_ARCHIVE_UPLOAD = 64 * 1024 * 1024
CHUNK = 64 * 1024


class ConfigurationBackup(BaseModel):
    version: int
    type: str
    deviceId: str
    firmwareVersion: str
    timestamp: str
    configuration: AppConfig


def _stamp(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def _chunks(fh: IO[bytes]) -> Iterator[bytes]:
    """Stream a finished temporary file, closing (deleting) it at the end."""
    try:
        fh.seek(0)
        while chunk := fh.read(CHUNK):
            yield chunk
    finally:
        fh.close()


async def _backup_document(request: Request) -> Any:
    """The uploaded backup: a multipart file part (the device's UI) or a raw JSON body."""
    if is_multipart(request):
        async with uploaded_file(request, MAX_CONFIG_BACKUP) as upload:
            raw = await upload.read()
    else:
        check_length(request, MAX_CONFIG_BACKUP)
        raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, f"Invalid JSON format: {err}") from err


def _archive(data_dir: Path, config: AppConfig) -> IO[bytes]:
    """The tar in an anonymous temporary file (gone once closed), ready to stream."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _chunks after streaming
    try:
        write_archive(data_dir, config, out)
    except BaseException:
        out.close()
        raise
    return out


async def _apply_archive(svc: Services, area: FileArea, content: ArchiveContent) -> None:
    moves = file_targets(content, area)  # may still reject: before anything is replaced
    if content.config is not None:
        await svc.config.replace(content.config)  # a role change zeroes energy: totals come after
    await asyncio.to_thread(install_files, moves)
    if content.energy is not None:
        for index in range(svc.channel_count):
            await svc.control.set_energy(index, content.energy.get(index, EnergyTotals()))


def endpoints(svc: Services) -> list[Endpoint]:
    restoring = asyncio.Lock()
    area = FileArea(svc.data_dir / FILES_DIR)

    def validate_config(doc: dict[str, Any], where: str) -> AppConfig:
        return restore_config(doc, svc.config.current, svc.factory_channels(svc.channel_count), where)

    async def backup_configuration(request: Request) -> Response:
        now = time.time()
        doc = config_document(svc.config.current, svc.device_id, __version__, now)
        name = f"config_backup_{svc.device_id}_{_stamp(now)}.json"
        return JSONBytes(doc, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def restore_configuration(request: Request) -> Response:
        if restoring.locked():
            raise ApiError(409, "Restore already in progress. Please wait for current restore to complete.")
        async with restoring:
            doc = await _backup_document(request)
            force = request.query_params.get("force") == "true"
            try:
                config = validate_config(
                    check_document(doc, svc.device_id, __version__, force), "configuration."
                )
            except BackupRejected as err:
                raise ApiError(400, str(err)) from err
            await svc.config.replace(config)
        return success("Configuration restored successfully (masked passwords and tokens were kept)")

    async def backup_filesystem(request: Request) -> Response:
        now = time.time()
        out = await asyncio.to_thread(_archive, svc.data_dir, svc.config.current)
        name = f"homemeter_backup_{svc.device_id}_{_stamp(now)}.tar"
        return StreamingResponse(
            _chunks(out),
            media_type="application/x-tar",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def restore_filesystem(request: Request) -> Response:
        if restoring.locked():
            raise ApiError(409, "Restore already in progress. Please wait for current restore to complete.")
        async with restoring, uploaded_file(request, MAX_ARCHIVE_UPLOAD) as upload:
            # Staged next to the data it replaces (same filesystem: the final moves are renames).
            staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=svc.data_dir))
            upload.file.seek(0)
            try:
                content = await asyncio.to_thread(
                    read_archive, upload.file, staging, lambda d: validate_config(d, "config.json: ")
                )
                await _apply_archive(svc, area, content)
            except BackupRejected as err:
                raise ApiError(400, str(err)) from err
            finally:
                await asyncio.to_thread(shutil.rmtree, staging, True)
        return success("Filesystem restored successfully")

    E = Endpoint
    upload_note = "multipart/form-data with one file part (the web UI's field `file`)"
    return [
        E(
            "GET",
            "/backup/configuration",
            backup_configuration,
            "Download the whole configuration",
            "Backup",
            response=ConfigurationBackup,
            description="Every configuration section; passwords and tokens masked (a restore "
            "keeps the stored ones for masked values). The login is never included.",
        ),
        E(
            "POST",
            "/restore/configuration",
            restore_configuration,
            "Restore a configuration backup (applied live)",
            "Restore",
            query=(Query("force", {"type": "string", "enum": ["true"]}, "skip the device-ID check"),),
            errors=(400, 409, 411, 413),
            description=f"{upload_note}, or the JSON document as the body. Validated whole "
            "before anything changes.",
        ),
        E(
            "GET",
            "/backup/filesystem",
            backup_filesystem,
            "Download the data directory as a tar",
            "Backup",
            media_type="application/x-tar",
            description="config.json (secrets masked), a consistent snapshot of energy.db and "
            "files/. Not included: credentials, device id, temporary files.",
        ),
        E(
            "POST",
            "/restore/filesystem",
            restore_filesystem,
            "Restore a data-directory tar (applied live)",
            "Restore",
            errors=(400, 409, 411, 413),
            description=f"{upload_note}. Members may only be config.json, energy.db and files/ "
            "(regular files and directories); all are checked before anything is replaced. "
            "Files of the same name are replaced, others kept; energy totals take effect at once.",
        ),
    ]
