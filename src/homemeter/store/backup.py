"""Backups: the configuration as one JSON document, and the data directory as a tar.

Neither contains the login (credentials.json holds password-equivalent HA1 hashes) nor, unless
explicitly asked for (`GET /backup/configuration?secrets=true`), secrets in clear: MQTT/InfluxDB
passwords and tokens appear as the mask, and restoring a masked value keeps the secret currently
stored (so a backup is safe to keep anywhere; after a restore onto a fresh install the secrets must
be entered again). The device always exports them in clear; that is the unsafe choice.

Everything is validated before anything is replaced: a rejected restore changes nothing.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson
from pydantic import BaseModel, ValidationError

from homemeter.config.app import AppConfig, describe
from homemeter.config.channel import MAX_CHANNELS, ChannelConfig
from homemeter.config.secrets import REVEAL, unmask
from homemeter.errors import HomemeterError
from homemeter.meter.quantities import ENERGY_COLUMNS, MAX_ENERGY
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.config import CONFIG_FILE
from homemeter.store.files import FILES_DIR, FileArea, UnsafePath, name_parts
from homemeter.timestamps import iso_time

BACKUP_FORMAT = 1
ENERGY_DB = "energy.db"
MAX_MEMBER_BYTES = 16 * 1024 * 1024  # the largest single file (uploads have the same cap)
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024  # all members together, after decompression
MAX_MEMBERS = 10_000
_ENERGY_COLUMNS = ("channel", *ENERGY_COLUMNS)


class BackupRejected(HomemeterError):
    """A backup document or archive that cannot be restored; the message names the problem."""


# ----------------------------------------------------------------------------- configuration
def config_document(
    config: AppConfig, device_id: str, version: str, now: float, *, reveal: bool = False
) -> dict[str, Any]:
    """The whole configuration (every section, secrets masked unless `reveal`) and its origin."""
    return {
        "version": BACKUP_FORMAT,
        "type": "configuration",
        "deviceId": device_id,
        "firmwareVersion": version,
        "timestamp": iso_time(now),
        "configuration": config.model_dump(mode="json", context=REVEAL if reveal else None),
    }


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError as err:
        raise BackupRejected(f"firmwareVersion: {text!r} is not a version like 1.2.3") from err


def check_document(
    doc: Any, device_id: str, version: str, force: bool, force_hint: str = "Use ?force=true to override."
) -> dict[str, Any]:
    """The `configuration` object of a backup document after the device's checks, in its order."""
    if not isinstance(doc, dict):
        raise BackupRejected("Invalid backup format: expected a JSON object")
    if doc.get("version") != BACKUP_FORMAT:
        raise BackupRejected(f"Invalid backup format: version must be {BACKUP_FORMAT}")
    if doc.get("type") != "configuration":
        raise BackupRejected("Invalid backup format: type must be 'configuration'")
    if not isinstance(doc.get("configuration"), dict):
        raise BackupRejected("Invalid backup format: configuration must be an object")
    backup_version = doc.get("firmwareVersion")
    if not isinstance(backup_version, str):
        raise BackupRejected("Backup missing firmware version")
    ours, theirs = _version(version), _version(backup_version)
    if theirs[:1] != ours[:1] or theirs > ours:
        raise BackupRejected(
            f"Firmware version incompatible: backup from {backup_version}, current {version}. "
            "Can only restore backups from same major version <= current."
        )
    if not force and doc.get("deviceId") != device_id:
        raise BackupRejected(
            f"Device ID mismatch: backup from {doc.get('deviceId')}, current device {device_id}. {force_hint}"
        )
    config: dict[str, Any] = doc["configuration"]
    return config


def restore_config(
    doc: dict[str, Any], current: AppConfig, factory: Sequence[ChannelConfig], where: str
) -> AppConfig:
    """Validate a configuration object whole against the running one.

    Masked secrets keep the stored value; the channel table is fitted to the running channel count
    (missing channels get the `factory` table's, as at start); errors name the field, prefixed with
    `where`.
    """
    doc = _keep_secrets(doc, current)
    channels = doc.get("channels")
    if isinstance(channels, list):
        defaults = [c.model_dump(mode="json") for c in factory]
        doc["channels"] = channels[: len(factory)] + defaults[len(channels) :]
    try:
        return AppConfig.model_validate(doc)
    except ValidationError as err:
        raise BackupRejected(f"{where}{describe(err).replace('; ', '; ' + where)}") from err


def _keep_secrets(doc: dict[str, Any], stored: BaseModel) -> dict[str, Any]:
    out = unmask(doc, stored)
    for name in type(stored).model_fields:
        value = getattr(stored, name)
        if isinstance(value, BaseModel) and isinstance(out.get(name), dict):
            out[name] = _keep_secrets(out[name], value)
    return out


# ----------------------------------------------------------------------------- archive
def write_archive(data_dir: Path, config: AppConfig, out: IO[bytes]) -> None:
    """The data directory as an uncompressed tar: configuration (secrets masked), a consistent
    snapshot of the energy database, and the file area. Left out: credentials, device id, run
    state, the energy database's own backup copy, WAL/SHM and temporary files."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, CONFIG_FILE, orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        db = data_dir / ENERGY_DB
        if db.exists():
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / ENERGY_DB
                _snapshot_db(db, copy)
                tar.add(copy, arcname=ENERGY_DB)
        files = data_dir / FILES_DIR
        if files.is_dir():
            tar.add(files, arcname=FILES_DIR, filter=_public_member)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _snapshot_db(src: Path, dst: Path) -> None:
    """SQLite's online backup: a consistent copy even while the service writes (WAL mode)."""
    source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal needed
    finally:
        target.close()
        source.close()


def _public_member(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Regular files and directories of the file area; no symlinks, no temporary files."""
    if PurePosixPath(info.name).name.startswith(".") or not (info.isreg() or info.isdir()):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@dataclass
class ArchiveContent:
    """A validated archive, staged on disk: what a restore will apply."""

    staging: Path
    config: AppConfig | None = None
    energy: dict[int, EnergyTotals] | None = None
    files: list[str] = field(default_factory=list)  # relative to files/, staged below staging/files


def read_archive(
    src: IO[bytes], staging: Path, validate_config: Callable[[dict[str, Any]], AppConfig]
) -> ArchiveContent:
    """Check every member (name, type, size), stage it, then validate config and energy."""
    content = ArchiveContent(staging)
    raw_config: bytes | None = None
    with _open_tar(src) as tar:
        total = 0
        for count, info in enumerate(_members(tar), start=1):
            if count > MAX_MEMBERS:
                raise BackupRejected(f"Archive has more than {MAX_MEMBERS} members")
            name = _member_name(info)
            if name is None or info.isdir():
                continue
            if info.size > MAX_MEMBER_BYTES:
                raise BackupRejected(f"{info.name}: larger than {MAX_MEMBER_BYTES} bytes")
            total += info.size
            if total > MAX_ARCHIVE_BYTES:
                raise BackupRejected(f"Archive contents exceed {MAX_ARCHIVE_BYTES} bytes")
            data = tar.extractfile(info)
            assert data is not None  # a regular file, checked by _member_name
            if name == CONFIG_FILE:
                raw_config = data.read()
                continue
            if name != ENERGY_DB:
                rel = name.removeprefix(FILES_DIR + "/")
                _check_file_name(rel, info.name)
                content.files.append(rel)
            _stage(data, staging / name, info.name)
    if raw_config is not None:
        content.config = _parse_config(raw_config, validate_config)
    if (staging / ENERGY_DB).exists():
        content.energy = _read_energy(staging / ENERGY_DB)
    if content.config is None and content.energy is None and not content.files:
        raise BackupRejected("Archive contains nothing to restore (config.json, energy.db, files/)")
    return content


def _open_tar(src: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=src, mode="r:*")
    except (tarfile.TarError, EOFError) as err:
        raise BackupRejected(f"Not a tar archive: {err}") from err


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    try:
        yield from tar
    except (tarfile.TarError, EOFError) as err:
        raise BackupRejected(f"Damaged tar archive: {err}") from err


def _member_name(info: tarfile.TarInfo) -> str | None:
    """The member's normalised name; None for the archive root. Rejects anything unexpected."""
    if not (info.isreg() or info.isdir()):
        raise BackupRejected(f"{info.name}: only regular files and directories are allowed")
    name = info.name.removeprefix("./").rstrip("/")
    if name in ("", "."):
        return None
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise BackupRejected(f"{info.name}: unsafe member path")
    allowed = (
        (name in (CONFIG_FILE, ENERGY_DB) and info.isreg())
        or (name == FILES_DIR and info.isdir())
        or (parts[0] == FILES_DIR and len(parts) > 1 and not parts[-1].startswith("."))
    )
    if not allowed:
        raise BackupRejected(
            f"{info.name}: not part of a homemeter backup (config.json, energy.db, files/ only)"
        )
    return name


def _check_file_name(rel: str, member: str) -> None:
    """The same rules as names sent to the files API (no encoded or control characters)."""
    try:
        name_parts(rel)
    except UnsafePath as err:
        raise BackupRejected(f"{member}: {err}") from err


def _stage(data: IO[bytes], target: Path, member: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            shutil.copyfileobj(data, fh)
    except OSError as err:
        raise BackupRejected(f"{member}: cannot be unpacked ({err.strerror})") from err


def _parse_config(raw: bytes, validate_config: Callable[[dict[str, Any]], AppConfig]) -> AppConfig:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise BackupRejected(f"{CONFIG_FILE}: invalid JSON: {err}") from err
    if not isinstance(doc, dict):
        raise BackupRejected(f"{CONFIG_FILE}: expected a JSON object")
    return validate_config(doc)


def _read_energy(path: Path) -> dict[int, EnergyTotals]:
    """Totals per channel from a database that passes SQLite's integrity check."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchone()
            rows = conn.execute(f"SELECT {', '.join(_ENERGY_COLUMNS)} FROM energy").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise BackupRejected(f"{ENERGY_DB}: not a homemeter energy database ({err})") from err
    if not check or check[0] != "ok":
        raise BackupRejected(f"{ENERGY_DB}: integrity check failed")
    totals: dict[int, EnergyTotals] = {}
    for channel, *values in rows:
        if not isinstance(channel, int) or not 0 <= channel < MAX_CHANNELS:
            raise BackupRejected(f"{ENERGY_DB}: channel {channel!r} out of range 0..{MAX_CHANNELS - 1}")
        if not all(isinstance(v, int | float) and 0 <= v <= MAX_ENERGY for v in values):
            raise BackupRejected(f"{ENERGY_DB}: channel {channel}: totals must be 0..{MAX_ENERGY:g}")
        totals[channel] = EnergyTotals(*(float(v) for v in values))
    return totals


def file_targets(content: ArchiveContent, area: FileArea) -> list[tuple[Path, Path]]:
    """(staged, final) pairs, each final path confined to the file area; checked before any move."""
    pairs = []
    for rel in content.files:
        try:
            target = area.resolve(rel)
        except UnsafePath as err:
            raise BackupRejected(f"{FILES_DIR}/{rel}: {err}") from err
        if target.is_dir():
            raise BackupRejected(f"{FILES_DIR}/{rel}: a directory of that name exists")
        pairs.append((content.staging / FILES_DIR / rel, target))
    return pairs


def install_files(pairs: list[tuple[Path, Path]]) -> None:
    """Move staged files into the file area: same names are replaced, others are kept."""
    for staged, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
