"""The user-visible file area `<data_dir>/files/`: what the device's LittleFS root is to its clients.

Energy-history CSVs and uploads live here. Every name a client sends is confined to this directory:
the credentials, configuration and energy database sit one level up and are never reachable. The
device checks nothing; here `..`, absolute or encoded names and symlinks that leave the area fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from homemeter.errors import HomemeterError
from homemeter.store.atomic import write_atomic

FILES_DIR = "files"
MAX_LIST_DEPTH = 5  # the device lists at most 5 levels deep
MIN_FREE_BYTES = 10 * 1024  # the device refuses uploads with less free space (507)
_FORBIDDEN_CHARS = frozenset("\\%\x00") | {chr(c) for c in range(32)}


class UnsafePath(HomemeterError):
    """A file name that would leave the file area, or is encoded to hide that it might."""


class InsufficientStorage(HomemeterError):
    """Less than MIN_FREE_BYTES free on the data directory's filesystem."""


def name_parts(name: str) -> list[str]:
    """The segments of a client's file name; UnsafePath unless it is a plain relative name.

    One leading `/` is allowed (the device's paths start at its filesystem root, which is the
    file area); anything else absolute, `.`/`..`, empty segments, backslashes, `%` (a second,
    still encoded layer) and control characters are refused.
    """
    rel = name[1:] if name.startswith("/") else name
    if not rel:
        raise UnsafePath("File path cannot be empty")
    parts = rel.split("/")
    if any(c in _FORBIDDEN_CHARS for c in rel) or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(f"Invalid file path: {_short(name)}")
    return parts


class FileArea:
    """Confined access to one directory: list, read, write atomically, delete."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def resolve(self, name: str) -> Path:
        """The real path for a client's name; UnsafePath if it is not inside the area (after
        following symlinks) or not a plain relative name (`name_parts`)."""
        root = self.root.resolve()
        real = root.joinpath(*name_parts(name)).resolve()
        if not real.is_relative_to(root) or real == root:
            raise UnsafePath(f"File path leaves the file area: {_short(name)}")
        return real

    def find(self, name: str) -> Path | None:
        """The regular file for `name`, or None if there is none."""
        path = self.resolve(name)
        return path if path.is_file() else None

    def listing(self, folder: str | None = None) -> dict[str, int] | None:
        """Relative path -> size in bytes, recursive; None when the folder does not exist."""
        folder = (folder or "").rstrip("/")
        base = self.resolve(folder) if folder else self.root.resolve()
        if not base.is_dir():
            return None
        return {str(p.relative_to(base)): size for p, size in _walk(base, MAX_LIST_DEPTH)}

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Create or replace a file atomically: readers see the old or the new content."""
        path = self.resolve(name)
        if shutil.disk_usage(self.root).free < MIN_FREE_BYTES:
            raise InsufficientStorage("Insufficient storage space")
        path.parent.mkdir(parents=True, exist_ok=True)
        # The parent may have been created through a name that resolved inside; check again.
        self.resolve(name)
        write_atomic(path, chunks)

    def delete(self, name: str) -> bool:
        """Remove a regular file; False if there is none."""
        path = self.find(name)
        if path is None:
            return False
        path.unlink()
        return True


def _walk(base: Path, depth: int) -> Iterable[tuple[Path, int]]:
    """Regular files below `base`, not following symlinks, skipping temporary files."""
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        if entry.is_symlink() or entry.name.startswith("."):
            continue
        if entry.is_file():
            yield Path(entry.path), entry.stat().st_size
        elif entry.is_dir() and depth > 1:
            yield from _walk(Path(entry.path), depth - 1)


def _short(name: str) -> str:
    # The device truncates names in messages to fit its buffer; here it keeps errors readable.
    return name if len(name) <= 63 else name[:60] + "..."
