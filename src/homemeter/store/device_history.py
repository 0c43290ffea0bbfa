"""The device's energy history files, read from its filesystem backup or one by one (reference meter.md 6).

The device keeps `energy/daily/*.csv` (today; a finished day briefly as `.csv.gz`),
`energy/monthly/*.csv.gz` and `energy/yearly/*.csv.gz`, all with the header
`timestamp,channel,active_imported,active_exported` and rows of cumulative Wh at UTC hours
(`2025-11-25T13:00:00.000Z`). Older firmware kept them directly in `energy/`; the device moves
those into `daily/` at boot, so they count as daily here. What is read is collected per channel in
compact arrays (ten years of 17 channels are 1.5 million rows) for `history_import` to merge into
the archive; every file that is not read says why.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import tarfile
import zlib
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from homemeter.config.channel import MAX_CHANNELS
from homemeter.store.archive import HOUR
from homemeter.store.backup import MAX_MEMBERS, BackupRejected
from homemeter.store.energy_files import HEADER

#: Read in this order: the oldest data first, so the first copy of a row is the consolidated one.
FOLDERS = ("yearly", "monthly", "daily")
MAX_FILE_BYTES = 64 * 1024 * 1024  # one file, decompressed: a year of 17 channels is ~5 MB
MAX_SKIPPED_LISTED = 200  # a LittleFS has a few dozen files; a stranger tar gets a shortened list
_ENERGY_FILE = re.compile(r"energy/(?:(daily|monthly|yearly)/)?[^/]+\.csv(\.gz)?")


def is_energy_file(path: str) -> bool:
    """A history file by its path from the device's filesystem root (`energy/daily/...`)."""
    return _ENERGY_FILE.fullmatch(path) is not None


class DeviceFileError(ValueError):
    """One energy file that cannot be read (damaged gzip, not the device's columns, too large)."""


@dataclass
class FolderCount:
    """What became of the rows of one folder's files."""

    files: int = 0  # files read
    rows: int = 0  # data lines read
    imported: int = 0  # rows added to the archive
    alreadyArchived: int = 0  # the archive has that channel and hour already
    repeated: int = 0  # the same channel and hour earlier in the files
    outOfRange: int = 0  # not yet closed here, or older than the retention
    invalid: int = 0  # lines that are not a row of the device's format
    firstProblem: str = ""  # the first invalid line and why


class ChannelRows:
    """One channel's rows in the order read: UTC hour, cumulative Wh imported/exported, folder."""

    __slots__ = ("exported", "folder", "hours", "imported")

    def __init__(self) -> None:
        self.hours = array("q")
        self.imported = array("d")
        self.exported = array("d")
        self.folder = array("b")  # index into FOLDERS

    def __len__(self) -> int:
        return len(self.hours)


@dataclass
class DeviceHistory:
    """Every energy row read so far, per channel, and what was read from where."""

    channels: dict[int, ChannelRows] = field(default_factory=dict)
    folders: dict[str, FolderCount] = field(default_factory=lambda: {f: FolderCount() for f in FOLDERS})
    skipped_files: dict[str, str] = field(default_factory=dict)  # path -> why it was not read

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.channels.values())

    def skip(self, path: str, reason: str) -> None:
        if len(self.skipped_files) < MAX_SKIPPED_LISTED:
            self.skipped_files[path] = reason
        else:
            self.skipped_files.setdefault("...", "more files left out, not listed")

    def add_file(self, path: str, content: bytes) -> None:
        """One file of the device, by its path from the filesystem root (`energy/daily/...`)."""
        match = _ENERGY_FILE.fullmatch(path)
        if match is None:
            self.skip(path, "not an energy history file")
            return
        folder = match.group(1) or "daily"  # a legacy file directly in energy/
        try:
            text = _decode(content, len(content) > 1 and content[:2] == b"\x1f\x8b")
        except DeviceFileError as err:
            self.skip(path, str(err))
            return
        count = self.folders[folder]
        count.files += 1
        self._parse(text, FOLDERS.index(folder), count, path)

    def _parse(self, text: str, folder: int, count: FolderCount, path: str) -> None:
        last_stamp, hour = "", 0
        for number, line in enumerate(text.splitlines(), start=1):
            if not line or line == HEADER:
                continue  # consolidated archives may repeat the header where files were joined
            parts = line.split(",")
            try:
                if len(parts) != 4:
                    raise ValueError(f"{len(parts)} fields instead of 4")
                if parts[0] != last_stamp:  # 17 channels share one timestamp: parse it once
                    hour, last_stamp = _hour(parts[0]), parts[0]
                channel = int(parts[1])
                imported, exported = float(parts[2]), float(parts[3])
                if not 0 <= channel < MAX_CHANNELS:
                    raise ValueError(f"channel {channel} outside 0..{MAX_CHANNELS - 1}")
                if not all(math.isfinite(v) and v >= 0 for v in (imported, exported)):
                    raise ValueError("energy must be a number >= 0")
            except ValueError as err:
                count.invalid += 1
                count.firstProblem = count.firstProblem or f"{path} line {number}: {err}"
                last_stamp = ""
                continue
            rows = self.channels.get(channel)
            if rows is None:
                rows = self.channels[channel] = ChannelRows()
            rows.hours.append(hour)
            rows.imported.append(imported)
            rows.exported.append(exported)
            rows.folder.append(folder)
            count.rows += 1


def _hour(stamp: str) -> int:
    """The UTC hour of a device timestamp (rounded to the nearest hour, as the device writes it)."""
    t = datetime.fromisoformat(stamp)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)  # the device writes UTC
    return math.floor(t.timestamp() / HOUR + 0.5) * HOUR


def _decode(content: bytes, compressed: bool) -> str:
    if compressed:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(content)) as fh:
                content = fh.read(MAX_FILE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as err:
            raise DeviceFileError(f"damaged gzip file ({err})") from err
    if len(content) > MAX_FILE_BYTES:
        raise DeviceFileError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        text = content.decode()
    except UnicodeDecodeError as err:
        raise DeviceFileError("not a text file") from err
    first = text.split("\n", 1)[0].strip()
    if first != HEADER:
        raise DeviceFileError(f"not the device's columns (first line {first[:60]!r}, expected {HEADER!r})")
    return text


# ----------------------------------------------------------------------------- the device's tar
def _path(name: str) -> str:
    """A member's path from the filesystem root (the device may write `/energy/...` or `./energy/...`)."""
    return name.removeprefix("./").lstrip("/")


def is_device_archive(src: IO[bytes]) -> bool:
    """The device's filesystem backup, told by its layout: a top-level `energy/` folder, which a
    homemeter backup never has (its files are under `files/`). The stream is left at its start."""
    try:
        with tarfile.open(fileobj=src, mode="r:*") as tar:
            for count, info in enumerate(tar):
                path = _path(info.name)
                if path == "energy" or path.startswith("energy/"):
                    return True
                if count > MAX_MEMBERS:
                    return False
    except (tarfile.TarError, EOFError):
        return False  # homemeter's reader names the problem
    finally:
        src.seek(0)
    return False


def read_device_archive(src: IO[bytes]) -> DeviceHistory:
    """Every energy file of the device's filesystem tar; the other files are listed as skipped."""
    history = DeviceHistory()
    try:
        with tarfile.open(fileobj=src, mode="r:*") as tar:
            for count, info in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise BackupRejected(f"Archive has more than {MAX_MEMBERS} members")
                path = _path(info.name)
                if info.isdir() or not path:
                    continue
                if not info.isreg():
                    history.skip(path, "not a regular file")
                elif info.size > MAX_FILE_BYTES:
                    history.skip(path, f"larger than {MAX_FILE_BYTES} bytes")
                elif not is_energy_file(path):
                    history.skip(path, "not energy history, not kept")
                else:
                    data = tar.extractfile(info)
                    assert data is not None  # a regular file
                    history.add_file(path, data.read())
    except (tarfile.TarError, EOFError) as err:
        raise BackupRejected(f"Damaged tar archive: {err}") from err
    return history
