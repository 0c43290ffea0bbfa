"""The Modbus server as a component: start, stop and live reconfiguration without a service restart.

A new port or bind address is tried before the running server is given up where the two can coexist,
so a port that cannot be bound leaves the previous server answering (`ConfigRejected`: 409 at the API).
`--bind` and `--modbus-port` override the stored address at start; an explicit change of that field
(REST) takes over from then on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from homemeter.component import Component, ComponentStatus, Context, State
from homemeter.config.app import AppConfig
from homemeter.config.modbus import ModbusConfig
from homemeter.errors import ConfigRejected, PortInUse
from homemeter.integrations.modbus.server import ModbusServer, ModbusStatus

log = logging.getLogger(__name__)

_ADDRESS = ("bind", "port")  # changing one of these needs a new listening socket


class ModbusService(Component):
    """Owns at most one `ModbusServer` and makes it match the configuration.

    `config` is the stored configuration; `effective` adds the command-line overrides. Changes are
    serialised by a lock, so two concurrent changes cannot leave two servers listening.
    """

    name = "modbus"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.config = ctx.config.modbus
        settings = ctx.settings
        overrides: dict[str, Any] = {"bind": settings.bind}
        if settings.modbus_port is not None:
            overrides["port"] = settings.modbus_port
        self._overrides: Mapping[str, Any] = overrides
        self._server: ModbusServer | None = None
        self._lock = asyncio.Lock()

    @property
    def effective(self) -> ModbusConfig:
        # model_copy does not validate: tests ask for port 0 (any free port) this way.
        return self.config.model_copy(update=self._overrides)

    @property
    def port(self) -> int | None:
        """The bound port (the configured one may be 0: any free port), None when not listening."""
        return self._server.port if self._server is not None else None

    def server_status(self) -> ModbusStatus:
        if self._server is not None:
            return self._server.status
        cfg = self.effective
        return ModbusStatus("stopped", cfg.bind, cfg.port, 0, 0, 0, 0)

    def details(self) -> Mapping[str, Any]:
        st = self.server_status()
        return {"listening": st.state == "listening", "bind": st.bind, "port": st.port, "clients": st.clients}

    def status(self) -> ComponentStatus:
        st = self.server_status()
        self.counters.update(requests=st.requests, errors=st.errors, rejected=st.rejected)
        if st.state == "listening":
            self.set_state(State.RUNNING)
        elif self._state is not State.STOPPED:
            self.set_state(State.DISABLED)
        return super().status()

    async def start(self) -> None:
        """Listen if enabled; `PortInUse` names the address when it cannot be bound."""
        async with self._lock:
            self.set_state(State.DISABLED)
            if self._server is None and self.config.enabled:
                self._server = await self._listen(self.effective)

    async def stop(self) -> None:
        await super().stop()
        async with self._lock:
            server, self._server = self._server, None
            if server is not None:
                await server.stop()

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        if new.modbus != self.config:
            await self.reconfigure(new.modbus)

    async def reconfigure(self, config: ModbusConfig) -> None:
        """Make the server match `config`; `ConfigRejected` if it cannot (old server kept)."""
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
                raise ConfigRejected(
                    f"port: cannot listen for Modbus TCP on {target.bind}:{target.port} ({reason})"
                ) from cause
            self.config, self._overrides = config, overrides

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
        view = self.ctx.meter
        server = ModbusServer(config, lambda: view.latest)
        await server.start()
        if previous is not None:  # counters are the service's, not one socket's
            server.requests, server.errors, server.rejected = (
                previous.requests,
                previous.errors,
                previous.rejected,
            )
        log.info("modbus listening address=%s:%d", config.bind, server.port)
        return server
