"""Backup and Restore: the configuration as JSON, the data directory as a tar (store/backup.py).

Restores apply live, without the device's restart: the configuration through `ConfigService` (every
listener sees it), files into the file area, energy totals into the meter, then saved to disk.
The configuration backup carries homemeter's own section and the device's `nvs` schema
(store/device_nvs.py); a restore accepts either, and a device's backup (store/device_backup.py).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from homemeter import __version__
from homemeter.api.responses import ApiError, JSONBytes, success
from homemeter.api.routing import Endpoint, Query
from homemeter.api.services import Services
from homemeter.api.uploads import check_length, is_multipart, uploaded_file
from homemeter.config.app import AppConfig
from homemeter.errors import StoreError
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store import history_import
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
from homemeter.store.device_backup import check_device_document, is_device_document, map_backup
from homemeter.store.device_history import is_device_archive, read_device_archive
from homemeter.store.device_nvs import NvsValue, device_nvs
from homemeter.store.files import FILES_DIR, FileArea
from homemeter.store.history import HistoryArchive
from homemeter.store.offline_import import energy_changes, energy_message, settings_message
from homemeter.system.host import build
from homemeter.timestamps import iso_time

MAX_CONFIG_BACKUP = 256 * 1024
MAX_ARCHIVE_UPLOAD = 64 * 1024 * 1024
CHUNK = 64 * 1024


class ConfigurationBackup(BaseModel):
    version: int
    type: str
    deviceId: str
    firmwareVersion: str
    sketchMD5: str
    timestamp: str
    configuration: AppConfig
    nvs: dict[str, dict[str, NvsValue]]


class FolderImport(BaseModel):
    """What became of the rows of one folder of the device's `energy/` files."""

    files: int
    rows: int = Field(description="data lines read")
    imported: int = Field(description="rows added to the history archive")
    alreadyArchived: int = Field(description="that channel and hour was archived already (kept)")
    repeated: int = Field(description="the same channel and hour earlier in the files")
    outOfRange: int = Field(description="an hour not closed here yet, or older than the retention")
    invalid: int = Field(description="lines that are not a row of the device's format")
    firstProblem: str = Field(description="the first invalid line and why; empty when none")


class CounterChange(BaseModel):
    """A device counter that went down (or jumped beyond the power limit) between two rows."""

    channel: int
    timestamp: str = Field(description="the row with the new level")
    importedBefore: float
    importedAfter: float
    exportedBefore: float
    exportedAfter: float


class HistoryImported(BaseModel):
    folders: dict[str, FolderImport] = Field(description="daily, monthly, yearly")
    rowsAdded: int
    decreases: list[CounterChange] = Field(description="not counted as energy; the first 100")
    decreaseCount: int
    jumps: list[CounterChange] = Field(description="not counted as energy; the first 100")
    jumpCount: int
    junctions: int = Field(description="events joining the device's counters to homemeter's own")
    skippedFiles: dict[str, str] = Field(description="path -> why it was not imported")


class FilesystemRestored(BaseModel):
    """The success envelope; the device's filesystem backup adds what became of its history."""

    success: bool
    message: str
    history: HistoryImported | None = None


class ConfigurationRestored(BaseModel):
    """The success envelope; a device backup adds what it left out and why."""

    success: bool
    message: str
    skipped: list[str] = Field(default_factory=list, description="namespace.key of each key not imported")
    skippedReasons: dict[str, str] = Field(default_factory=dict, description="namespace.key -> reason")


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


async def _restore_device(svc: Services, doc: Any, force: bool) -> Response:
    """Validated whole first; then the configuration, log levels and energy totals, live."""
    try:
        backup = check_device_document(doc, svc.device_id, __version__, force)
        settings = map_backup(backup.nvs, svc.config.current)
    except BackupRejected as err:
        raise ApiError(400, str(err)) from err
    await svc.config.replace(settings.config)  # a role change zeroes energy: totals come after
    logs = svc.log_control
    printed, saved = settings.log_levels
    if printed or saved:
        logs.set_levels(printed or logs.print_level, saved or logs.save_level)
    own = {ch.index: ch.energy for ch in svc.meter.latest.channels}
    changed, unchanged = energy_changes(own, settings.energy)
    for index, totals in changed.items():
        await svc.control.set_energy(index, totals)
    skipped = dict(settings.skipped)
    energy = energy_message(changed, unchanged)
    message = settings_message(backup, settings.imported, len(skipped), energy)
    return success(message, skipped=list(skipped), skippedReasons=skipped)


def _changes(changes: list[history_import.CounterChange]) -> list[CounterChange]:
    return [
        CounterChange(
            channel=c.channel,
            timestamp=iso_time(c.hour),
            importedBefore=c.before[0],
            importedAfter=c.after[0],
            exportedBefore=c.before[1],
            exportedAfter=c.after[1],
        )
        for c in changes
    ]


async def _restore_device_files(svc: Services, src: IO[bytes]) -> Response:
    """The device's `energy/` files into the history archive; its other files are listed, not kept."""
    archive = svc.components.get("history")
    if not isinstance(archive, HistoryArchive):
        raise ApiError(503, "the energy history archive is not running")
    try:
        history = await asyncio.to_thread(read_device_archive, src)
        report = await archive.import_device_history(history, svc.config.current.channels)
    except BackupRejected as err:
        raise ApiError(400, str(err)) from err
    except StoreError as err:
        raise ApiError(503, f"Device filesystem backup not imported: {err}") from err
    body = HistoryImported(
        folders={name: FolderImport(**asdict(count)) for name, count in report.folders.items()},
        rowsAdded=report.rows_added,
        decreases=_changes(report.decreases),
        decreaseCount=report.decrease_count,
        jumps=_changes(report.jumps),
        jumpCount=report.jump_count,
        junctions=report.junctions,
        skippedFiles=report.skipped_files,
    )
    return success(f"Device filesystem backup: {report.message()}", history=body.model_dump())


def endpoints(svc: Services) -> list[Endpoint]:
    restoring = asyncio.Lock()
    area = FileArea(svc.data_dir / FILES_DIR)

    def validate_config(doc: dict[str, Any], where: str) -> AppConfig:
        return restore_config(doc, svc.config.current, svc.factory_channels(svc.channel_count), where)

    async def backup_configuration(request: Request) -> Response:
        now = time.time()
        reveal = request.query_params.get("secrets") == "true"
        config = svc.config.current
        doc = config_document(config, svc.device_id, __version__, now, reveal=reveal)
        doc["sketchMD5"] = build().md5
        energy = [ch.energy for ch in svc.meter.latest.channels]
        levels = (svc.log_control.print_level, svc.log_control.save_level)
        doc["nvs"] = device_nvs(config, energy, levels, reveal=reveal)
        name = f"config_backup_{svc.device_id}_{_stamp(now)}.json"
        return JSONBytes(doc, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def restore_configuration(request: Request) -> Response:
        if restoring.locked():
            raise ApiError(409, "Restore already in progress. Please wait for current restore to complete.")
        async with restoring:
            doc = await _backup_document(request)
            force = request.query_params.get("force") == "true"
            if is_device_document(doc):
                return await _restore_device(svc, doc, force)
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
            upload.file.seek(0)
            if await asyncio.to_thread(is_device_archive, upload.file):
                return await _restore_device_files(svc, upload.file)
            # Staged next to the data it replaces (same filesystem: the final moves are renames).
            staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=svc.data_dir))
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
            query=(
                Query(
                    "secrets",
                    {"type": "string", "enum": ["true"]},
                    "include passwords and tokens in clear (default: masked)",
                ),
            ),
            description="Every configuration section, and the same settings in the EnergyMe-Home "
            "device's format (`nvs`: namespaces of typed values, energy totals in `energy_ns`). "
            "Passwords and tokens masked unless `secrets=true` (a restore keeps the stored ones "
            "for masked values). The login is never included.",
        ),
        E(
            "POST",
            "/restore/configuration",
            restore_configuration,
            "Restore a configuration backup (applied live)",
            "Restore",
            query=(Query("force", {"type": "string", "enum": ["true"]}, "skip the device-ID check"),),
            response=ConfigurationRestored,
            errors=(400, 409, 411, 413),
            description=f"{upload_note}, or the JSON document as the body: homemeter's own backup "
            "or an EnergyMe-Home device's (`nvs`, firmware 2.x). Validated whole before anything "
            "changes. A device's energy counters raise homemeter's totals (never lower them); "
            "keys without meaning on Linux are listed in `skipped` with their reason.",
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
            "Restore a data-directory tar, or import a device's energy history (applied live)",
            "Restore",
            response=FilesystemRestored,
            errors=(400, 409, 411, 413, 503),
            description=f"{upload_note}. homemeter's own backup: members may only be config.json, "
            "energy.db and files/ (regular files and directories); all are checked before anything "
            "is replaced. Files of the same name are replaced, others kept; energy totals take "
            "effect at once. An EnergyMe-Home device's filesystem backup (told by its top-level "
            "`energy/` folder): its daily, monthly and yearly CSV files (plain or gzip) are added "
            "to the energy history, only the hours it does not have yet; counter decreases are "
            "listed in `history`, never counted as energy; the device's other files are listed in "
            "`history.skippedFiles` and not kept. Restore the device's configuration backup first: "
            "the channels' roles and groups decide where its history is credited.",
        ),
    ]
