"""The service configuration on disk (`config.json`) and live.

The file is
replaced atomically; a file that does not validate stops the service with a message naming the field,
and is never overwritten with defaults (energy lives elsewhere and is never touched by config).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from homemeter.config.app import AppConfig, describe
from homemeter.config.channel import ChannelConfig
from homemeter.config.secrets import REVEAL
from homemeter.errors import ConfigError, ConfigRejected, StoreError
from homemeter.store.atomic import write_atomic

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"


class ConfigStore:
    """Loads, validates and atomically saves `config.json` in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CONFIG_FILE

    def load(self, defaults: Callable[[], Sequence[ChannelConfig]]) -> AppConfig:
        """The stored configuration; on first start the factory one, written to disk."""
        if not self.path.exists():
            config = AppConfig(channels=tuple(defaults()))
            self.save(config)
            return config
        try:
            raw = self.path.read_bytes()
            return AppConfig.model_validate_json(raw)
        except OSError as err:
            raise ConfigError(f"cannot read {self.path}: {err.strerror}") from err
        except ValidationError as err:
            raise ConfigError(
                f"invalid configuration in {self.path}: {describe(err)} "
                "(fix or remove the file; energy totals are kept separately and are not affected)"
            ) from err

    def save(self, config: AppConfig) -> None:
        """Replace the file atomically; `StoreError` (old file intact) when it cannot be written."""
        # The one dump with secrets in clear: the publishers need them (store/secrets.py).
        data = json.dumps(config.model_dump(mode="json", context=REVEAL), indent=2).encode() + b"\n"
        try:
            write_atomic(self.path, data, mode=0o600)
        except OSError as err:
            raise StoreError(f"cannot write {self.path} ({err.strerror}); the file was not changed") from err


#: Applies a change live (`old`, `new`); raises `ConfigRejected` to refuse it with nothing changed.
Applier = Callable[[AppConfig, AppConfig], Awaitable[None]]


class ConfigService:
    """The live configuration: validate a change whole, apply it everywhere, then save it.

    Nothing is half applied: an invalid change raises before anything is touched; a change that one
    applier refuses (`ConfigRejected`) or that cannot be written is undone in those already applied.
    Changes are serialised, and the file is written off the event loop (fsync can take long).
    """

    def __init__(self, store: ConfigStore, config: AppConfig) -> None:
        self._store = store
        self.current = config
        self._appliers: list[tuple[str, Applier]] = []
        self._lock = asyncio.Lock()

    def subscribe(self, name: str, applier: Applier) -> None:
        self._appliers.append((name, applier))

    async def replace(self, config: AppConfig) -> AppConfig:
        async with self._lock:
            old = self.current
            if config == old:
                return old
            done: list[tuple[str, Applier]] = []
            try:
                for name, applier in self._appliers:
                    await applier(old, config)
                    done.append((name, applier))
                await asyncio.to_thread(self._store.save, config)
            except BaseException:
                for name, applier in reversed(done):
                    await _undo(name, applier, config, old)
                raise
            self.current = config
            return config

    async def update(self, **changes: object) -> AppConfig:
        """A new configuration with some top-level fields replaced (validated whole)."""
        doc = self.current.model_dump()
        doc.update(changes)
        return await self.replace(AppConfig.model_validate(doc))


async def _undo(name: str, applier: Applier, new: AppConfig, old: AppConfig) -> None:
    try:
        await applier(new, old)
    except ConfigRejected as err:  # the old settings no longer fit either (e.g. port taken since)
        log.error("could not restore previous settings of %s: %s", name, err)
