"""Importing into a data directory while the service is stopped: what the CLI's import commands write.

The running service owns `config.json` and `energy.db` (it would overwrite both at its next save),
so an offline import first proves that nothing has the energy database open: the service keeps it
open for as long as it runs, and SQLite refuses an exclusive lock while it does. The probe holds the
lock only for an instant (a service starting meanwhile waits for it, it does not fail).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homemeter.config.app import AppConfig
from homemeter.config.channel import MAX_CHANNELS, ChannelConfig
from homemeter.errors import StoreError
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.backup import BackupRejected, check_document, restore_config
from homemeter.store.config import CONFIG_FILE, ConfigStore
from homemeter.store.device_backup import (
    DeviceBackup,
    DeviceSettings,
    check_device_document,
    is_device_document,
    map_backup,
    raised,
)
from homemeter.store.device_history import DeviceHistory, is_device_archive, read_device_archive
from homemeter.store.energy_store import EnergyStore
from homemeter.store.history import retention_start
from homemeter.store.history_import import HistoryImport, Window, attribution, import_history
from homemeter.store.identity import device_id

#: Why `adv_log_ns` is left out offline (the live restore applies the levels at once).
LOG_LEVELS_OFFLINE = "homemeter takes its log levels from --log-level at start"


class ServiceRunning(StoreError):
    """The data directory's energy database is open in a running service."""


@dataclass(frozen=True)
class ImportReport:
    """What an import did, for the API response and the CLI's output."""

    message: str
    skipped: Mapping[str, str]  # "namespace.key" -> reason
    history: HistoryImport | None = None  # the energy history files, when they were imported


def ensure_stopped(data_dir: Path) -> None:
    """Refuse (`ServiceRunning`) while anything holds the data directory's energy database open."""
    db = data_dir / "energy.db"
    if not db.exists():
        return  # the service creates it at start: nothing has run on this directory yet
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, timeout=0, isolation_level=None)
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            raise ServiceRunning(
                f"{db} is in use: homemeter is running on {data_dir}. Stop it first "
                "(e.g. systemctl stop homemeter), or restore through the running service with "
                "POST /api/v1/restore/configuration"
            ) from err
        raise StoreError(f"cannot open {db}: {err}") from err


def current_config(data_dir: Path) -> AppConfig:
    """The stored configuration, or the device's factory one for a directory without one (not written)."""
    if (data_dir / CONFIG_FILE).exists():
        return ConfigStore(data_dir).load(lambda: ())
    return AppConfig(channels=tuple(ChannelConfig.default(i) for i in range(MAX_CHANNELS)))


def energy_changes(
    own: Mapping[int, EnergyTotals], device: Mapping[int, EnergyTotals], reset: frozenset[int] = frozenset()
) -> tuple[dict[int, EnergyTotals], list[int]]:
    """(new totals of the channels that change, device channels left as they were).

    `reset` channels count from zero first (their role changed: homemeter's totals measured
    something else), as the running meter does on a role change.
    """
    changes: dict[int, EnergyTotals] = {}
    unchanged: list[int] = []
    for index in sorted(set(device) | reset):
        before = EnergyTotals() if index in reset else own.get(index, EnergyTotals())
        after = raised(before, device.get(index, EnergyTotals()))
        if after != own.get(index, EnergyTotals()):
            changes[index] = after
        elif index in device:
            unchanged.append(index)
    return changes, unchanged


def energy_message(changed: Mapping[int, EnergyTotals], unchanged: list[int]) -> str:
    if not changed and not unchanged:
        return "the backup holds no energy totals"
    text = f"energy totals raised on channels {sorted(changed)}" if changed else "no energy total raised"
    if unchanged:
        text += f"; channels {unchanged} kept homemeter's own totals (as high or higher)"
    return text


def settings_message(backup: DeviceBackup, imported: int, skipped: int, energy: str) -> str:
    return (
        f"Device configuration restored from {backup.deviceId or 'a device'} (firmware "
        f"{backup.firmwareVersion}): {imported} settings imported, {skipped} keys skipped; {energy}"
    )


def write_device_settings(
    data_dir: Path,
    backup: DeviceBackup,
    settings: DeviceSettings,
    live_energy: Mapping[int, EnergyTotals] | None = None,
) -> ImportReport:
    """Save the configuration, then raise the stored energy totals (never lower one).

    `live_energy` (what a running device's meter shows) counts as well: the device writes its
    counters to NVS only every 15 minutes, so they may lag behind.
    """
    old = current_config(data_dir)
    device = dict(settings.energy)
    for index, totals in (live_energy or {}).items():
        device[index] = raised(device.get(index, EnergyTotals()), totals)
    store = EnergyStore(data_dir)
    own = store.open()
    try:
        reset = frozenset(
            a.index for a, b in zip(old.channels, settings.config.channels, strict=True) if a.role != b.role
        )
        changed, unchanged = energy_changes(own, device, reset)
        ConfigStore(data_dir).save(settings.config)
        if changed:
            # Raised totals no longer follow a remote meter's counters from the saved point. First:
            # a crash in between then costs a baseline (the next start), never a double count.
            store.forget_baselines(changed)
            store.save({**own, **changed})
    finally:
        store.close()
    skipped = dict(settings.skipped)
    for name, level in zip(("printLevel", "saveLevel"), settings.log_levels, strict=True):
        if level is not None:
            skipped[f"adv_log_ns.{name}"] = LOG_LEVELS_OFFLINE
    message = settings_message(backup, settings.imported, len(skipped), energy_message(changed, unchanged))
    return ImportReport(message, dict(sorted(skipped.items())))


def import_backup_file(data_dir: Path, doc: Any, version: str, force: bool) -> ImportReport:
    """`homemeter import-device-backup`: the device's document or homemeter's own, as the REST restore."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_stopped(data_dir)
    ident = device_id(data_dir)
    current = current_config(data_dir)
    if is_device_document(doc):
        backup = check_device_document(doc, ident, version, force, "Use --force to override.")
        return write_device_settings(data_dir, backup, map_backup(backup.nvs, current))
    section = check_document(doc, ident, version, force, "Use --force to override.")
    factory = tuple(ChannelConfig.default(i) for i in range(len(current.channels)))
    ConfigStore(data_dir).save(restore_config(section, current, factory, "configuration."))
    return ImportReport("Configuration restored (masked passwords and tokens were kept)", {})


def read_device_files(data_dir: Path, path: Path) -> DeviceHistory:
    """The energy files of the device's filesystem backup `path` (the service must be stopped)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_stopped(data_dir)
    try:
        with open(path, "rb") as src:
            if not is_device_archive(src):
                raise BackupRejected(
                    f"{path} is not an EnergyMe-Home filesystem backup (no energy/ folder); restore "
                    "homemeter's own through the running service: POST /api/v1/restore/filesystem"
                )
            return read_device_archive(src)
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror}") from err


def write_device_history(
    data_dir: Path,
    history: DeviceHistory,
    channels: Sequence[ChannelConfig] | None = None,
    channel_done: Callable[[], None] = lambda: None,
) -> HistoryImport:
    """Add the device's rows the archive lacks, up to now, credited as `channels` (default: the
    stored configuration) say. The next start joins them to homemeter's counters as after a stop."""
    ensure_stopped(data_dir)  # again: the service may have been started meanwhile
    config = current_config(data_dir)
    now = time.time()
    window = Window(retention_start(now, config.history.retentionYears), int(now) + 1)
    credit = attribution(config.channels if channels is None else channels)
    store = EnergyStore(data_dir)
    store.open()
    try:
        return asyncio.run(import_history(store, history, credit, window, channel_done))
    finally:
        store.close()
