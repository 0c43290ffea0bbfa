"""The Modbus server's lifecycle: start, stop and live reconfiguration without restarting the service.

A new port or bind address is tried before the running server is given up where the two can coexist,
so a port that cannot be bound leaves the previous server answering. `--bind` and `--modbus-port`
override the stored address at start; an explicit change of that field (REST) takes over from then on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from homemeter.errors import PortInUse
from homemeter.integrations.modbus.config import ModbusConfig
from homemeter.integrations.modbus.server import ModbusServer, ModbusStatus
from homemeter.meter.snapshot import MeterSnapshot

if TYPE_CHECKING:  # store.config imports this package: a runtime import would be circular
    from homemeter.store.config import AppConfig

log = logging.getLogger(__name__)

_ADDRESS = ("bind", "port")  # changing one of these needs a new listening socket


class ModbusService:
    """Owns at most one `ModbusServer`; `apply(config)` makes the running one match `config`.

    `config` is the stored configuration; `effective` adds the command-line overrides. Calls are
    serialised by a lock, so two concurrent changes cannot leave two servers listening.
    """

    def __init__(
        self,
        config: ModbusConfig,
        latest: Callable[[], MeterSnapshot],
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._latest = latest
        self._overrides = {k: v for k, v in (overrides or {}).items() if k in _ADDRESS}
        self._server: ModbusServer | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def effective(self) -> ModbusConfig:
        # model_copy does not validate: tests ask for port 0 (any free port) this way.
        return self.config.model_copy(update=self._overrides)

    @property
    def status(self) -> ModbusStatus:
        if self._server is not None:
            return self._server.status
        cfg = self.effective
        return ModbusStatus("stopped", cfg.bind, cfg.port, 0, 0, 0, 0)

    async def start(self) -> None:
        """Listen if enabled; `PortInUse` names the address when it cannot be bound."""
        async with self._lock:
            if self._server is None and self.config.enabled:
                self._server = await self._listen(self.effective)

    async def stop(self) -> None:
        for task in list(self._pending):  # before taking the lock: they wait for it
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        async with self._lock:
            server, self._server = self._server, None
            if server is not None:
                await server.stop()

    async def __aenter__(self) -> ModbusService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def apply(self, config: ModbusConfig) -> None:
        """Make the server match `config`; on `PortInUse` nothing changes (old server kept)."""
        async with self._lock:
            overrides = {
                k: v for k, v in self._overrides.items() if getattr(config, k) == getattr(self.config, k)
            }
            target = config.model_copy(update=overrides)
            try:
                await self._reconfigure(target)
            except PortInUse as err:
                # The start-up message suggests --modbus-port; a live change only needs the reason.
                cause = err.__cause__
                reason = (cause.strerror if isinstance(cause, OSError) else None) or str(cause or err)
                raise PortInUse(
                    f"cannot listen for Modbus TCP on {target.bind}:{target.port} ({reason})"
                ) from cause
            self.config, self._overrides = config, overrides

    def follow(self, old: AppConfig, new: AppConfig) -> None:
        """ConfigService listener: a change made elsewhere (e.g. a restore) is applied too.

        Changes made through `apply` first are already in effect, so this is then a no-op.
        """
        if new.modbus == self.config:
            return
        task = asyncio.get_running_loop().create_task(self._follow(new.modbus), name="modbus-apply")
        self._pending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._pending.discard)

    async def _follow(self, config: ModbusConfig) -> None:
        try:
            await self.apply(config)
        except PortInUse as err:
            log.error("modbus configuration not applied, previous settings kept: %s", err)

    async def _reconfigure(self, target: ModbusConfig) -> None:
        server = self._server
        if server is None:
            if target.enabled:
                self._server = await self._listen(target)
            return
        current = server.config
        if not target.enabled:
            self._server = None
            await server.stop()
            log.info("modbus stopped (disabled)")
            return
        if all(getattr(target, k) == getattr(current, k) for k in _ADDRESS):
            # idleTimeout and maxClients are read per connection: connected clients stay connected.
            server.config = target
            return
        if target.port == current.port:
            # Same port on another address: the old socket would make the new bind fail. Stop first,
            # and bring the old one back if the new address cannot be bound.
            await server.stop()
            try:
                self._server = await self._listen(target, server)
            except PortInUse:
                await self._restart_previous(server)
                raise
            return
        self._server = await self._listen(target, server)
        await server.stop()

    async def _restart_previous(self, server: ModbusServer) -> None:
        try:
            await server.start()
            self._server = server
        except PortInUse as err:  # someone took the old port in between: nothing listens now
            self._server = None
            log.error("modbus stopped: the previous address cannot be bound again either: %s", err)

    async def _listen(self, config: ModbusConfig, previous: ModbusServer | None = None) -> ModbusServer:
        server = ModbusServer(config, self._latest)
        await server.start()
        if previous is not None:  # counters are the service's, not one socket's
            server.requests, server.errors, server.rejected = (
                previous.requests,
                previous.errors,
                previous.rejected,
            )
        log.info("modbus listening address=%s:%d", config.bind, server.port)
        return server
