"""`homemeter import-device`: a running device's settings and energy totals, into a data directory.

An import is the list `STEPS`, each a function of one `DeviceImport` job, run in order. Steps
that read the device only collect into the job; the data directory (the service stopped) is
written by one step after everything was read and validated, so an interrupted import (device
gone, wrong password, Ctrl-C) writes nothing and is simply run again. A re-run writes the same
configuration and only raises energy totals, never lowers one.

Adding a part is one function `step(job)` placed in `STEPS`: `job.get_json`/`job.get_bytes`
read the device, `job.progress` shows what it does, `job.data_dir` is where it writes (after
`write_data_dir`, or collecting first and writing in its own final step).

The energy history files (reference rest-api.md 7) are read like the device's dashboard reads
them and written last, after the configuration (whose roles and groups they are credited to); a
re-run adds only the hours the archive does not have yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from homemeter import __version__
from homemeter.errors import HomemeterError
from homemeter.meter.quantities import ENERGY_QUANTITIES
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.backup import BackupRejected
from homemeter.store.device_backup import DeviceBackup, DeviceSettings, check_device_document, map_backup
from homemeter.store.device_history import FOLDERS, DeviceHistory, is_energy_file
from homemeter.store.offline_import import (
    ImportReport,
    current_config,
    ensure_stopped,
    write_device_history,
    write_device_settings,
)

API = "/api/v1"
TIMEOUT_S = 30.0  # the device's own UI allows 30 s for backup requests; it is a small chip
AGAIN = "nothing was written; run the command again"


class DeviceImportError(HomemeterError):
    """The device could not be read (unreachable, refused, unexpected answer); nothing was written."""


class Progress(Protocol):
    """What an import reports: a named part of known size, then each unit done."""

    def start(self, description: str, total: int) -> None: ...

    def advance(self) -> None: ...


class ChannelEnergy(BaseModel):
    """The energy counters of `GET /ade7953/meter-values?index=N` (Wh, VArh, VAh; other keys ignored)."""

    model_config = ConfigDict(extra="ignore")

    activeEnergyImported: float = Field(ge=0, allow_inf_nan=False)
    activeEnergyExported: float = Field(ge=0, allow_inf_nan=False)
    reactiveEnergyImported: float = Field(ge=0, allow_inf_nan=False)
    reactiveEnergyExported: float = Field(ge=0, allow_inf_nan=False)
    apparentEnergy: float = Field(ge=0, allow_inf_nan=False)

    def totals(self) -> EnergyTotals:
        return EnergyTotals(*(getattr(self, q.key) for q in ENERGY_QUANTITIES))


@dataclass
class DeviceImport:
    """One import's state: the device client, where it writes, and what the steps collected."""

    url: str
    client: httpx.Client
    data_dir: Path
    progress: Progress
    backup: DeviceBackup | None = None
    settings: DeviceSettings | None = None
    live_energy: dict[int, EnergyTotals] = field(default_factory=dict)
    history: DeviceHistory | None = None
    report: ImportReport | None = None

    def get_bytes(self, path: str, **params: str) -> bytes:
        """GET a path below /api/v1; any failure is a `DeviceImportError` that says what happened."""
        try:
            response = self.client.get(API + path, params=params)
        except httpx.HTTPError as err:
            raise DeviceImportError(f"cannot read {self.url}{API}{path}: {err}; {AGAIN}") from err
        if response.status_code == 401:
            raise DeviceImportError(f"{self.url} refused the user name or password; {AGAIN}")
        if response.status_code != 200:
            raise DeviceImportError(
                f"{self.url}{API}{path} answered HTTP {response.status_code}: {response.text[:200]}; {AGAIN}"
            )
        return response.content

    def get_json(self, path: str, **params: str) -> Any:
        try:
            return orjson.loads(self.get_bytes(path, **params))
        except orjson.JSONDecodeError as err:
            raise DeviceImportError(f"{self.url}{API}{path} did not answer JSON; {AGAIN}") from err


Step = Callable[[DeviceImport], None]


def check_data_dir(job: DeviceImport) -> None:
    """Fail before the first request if the service runs on the data directory."""
    job.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_stopped(job.data_dir)


def read_configuration(job: DeviceImport) -> None:
    """The device's configuration backup, checked and mapped onto the data directory's configuration.

    The device ID check is skipped: the user named the device. `secrets=true` is ignored by the
    device (it always exports them) and asks a homemeter acting as the device for them in clear.
    """
    job.progress.start("configuration backup", 1)
    doc = job.get_json("/backup/configuration", secrets="true")
    try:
        job.backup = check_device_document(doc, "", __version__, force=True)
        job.settings = map_backup(job.backup.nvs, current_config(job.data_dir))
    except BackupRejected as err:
        raise DeviceImportError(f"{job.url}: {err}; {AGAIN}") from err
    job.progress.advance()


def read_energy(job: DeviceImport) -> None:
    """Each channel's live counters: fresher than the backup's (the device saves them every 15 min)."""
    assert job.settings is not None
    channels = job.get_json("/ade7953/channel")
    if not isinstance(channels, list):
        raise DeviceImportError(f"{job.url}{API}/ade7953/channel did not answer a channel list; {AGAIN}")
    count = min(len(channels), len(job.settings.config.channels))
    job.progress.start("energy totals", count)
    for index in range(count):
        body = job.get_json("/ade7953/meter-values", index=str(index))
        try:
            job.live_energy[index] = ChannelEnergy.model_validate(body).totals()
        except ValidationError as err:
            raise DeviceImportError(
                f"{job.url}{API}/ade7953/meter-values?index={index}: unexpected answer ({err.error_count()} "
                f"problems, first: {err.errors()[0]['msg']}); {AGAIN}"
            ) from err
        job.progress.advance()


def write_data_dir(job: DeviceImport) -> None:
    """Configuration and raised totals, written only now that everything was read."""
    assert job.backup is not None and job.settings is not None
    job.progress.start("writing the data directory", 1)
    ensure_stopped(job.data_dir)  # again: the service may have been started meanwhile
    job.report = write_device_settings(job.data_dir, job.backup, job.settings, job.live_energy)
    job.progress.advance()


def read_history(job: DeviceImport) -> None:
    """Every energy file, listed folder by folder and read one by one, as the device's dashboard does."""
    paths = []
    for folder in FOLDERS:
        listing = job.get_json("/list-files", folder=f"energy/{folder}")  # null: no such folder
        if not isinstance(listing, dict | None):
            raise DeviceImportError(f"{job.url}{API}/list-files did not answer a file list; {AGAIN}")
        paths += [f"energy/{folder}/{name}" for name in sorted(listing or {})]
    job.history = DeviceHistory()
    job.progress.start("energy history files", len(paths))
    for path in paths:
        if is_energy_file(path):
            job.history.add_file(path, job.get_bytes("/files/" + quote(path, safe="")))
        else:
            job.history.skip(path, "not an energy history file")
        job.progress.advance()


def write_history(job: DeviceImport) -> None:
    """The hours the archive lacks, credited to the channels as just configured."""
    assert job.history is not None and job.settings is not None and job.report is not None
    job.progress.start("writing energy history", len(job.history.channels))
    channels = job.settings.config.channels
    added = write_device_history(job.data_dir, job.history, channels, job.progress.advance)
    job.report = replace(job.report, history=added)


STEPS: tuple[Step, ...] = (
    check_data_dir,
    read_configuration,
    read_energy,
    read_history,
    write_data_dir,
    write_history,
)


def import_device(url: str, auth: httpx.Auth, data_dir: Path, progress: Progress) -> ImportReport:
    """Run `STEPS` against the device at `url` (e.g. http://192.168.1.50); the report of the write."""
    base = url.rstrip("/")
    with httpx.Client(base_url=base, auth=auth, timeout=TIMEOUT_S, follow_redirects=False) as client:
        job = DeviceImport(base, client, data_dir, progress)
        for step in STEPS:
            step(job)
    assert job.report is not None
    return job.report
