"""The mDNS advertiser as a component: `_http._tcp` and `_modbus._tcp` on the ports actually bound.

One task owns the responder (python-zeroconf's `AsyncZeroconf`) and makes it match what should be
advertised: the configuration, the port Modbus listens on, and the host's addresses, which it reads
every `POLL_S` seconds. A configuration change (`apply`) only wakes it, so a REST change never waits
for a multi-second probe, and `apply` never refuses: advertising is best effort.

Names: the host name is probed first (an A query; an answer with addresses that are not ours means
it is taken, and `homemeter-2`, `-3`... are tried), then each service is registered with zeroconf's
own conflict handling (`allow_name_change`: a taken instance name becomes `name-2`). The device does
neither (reference integrations.md 4, weakness 12).

A changed address is re-announced as the device does it (goodbyes for the old records, then the
new ones, without probing the names again: they are ours). A clean stop sends goodbyes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import zeroconf
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.errors import HomemeterError, MdnsUnavailable
from homemeter.integrations.mdns import addresses
from homemeter.integrations.mdns.addresses import HostAddresses
from homemeter.integrations.mdns.records import (
    ServiceSpec,
    home_assistant_notice,
    http_service,
    modbus_service,
    numbered,
)
from homemeter.system.issues import Severity

log = logging.getLogger(__name__)

POLL_S = 2.0  # how often the host's addresses and the Modbus port are compared (cheap reads)
HOST_PROBE_MS = 750  # an unanswered A query for this long means the host name is free (RFC 6762 8.1)
MAX_ALTERNATIVES = 99  # homemeter-2 .. homemeter-99
KINDS = ("http", "modbus")


def _responder(found: HostAddresses) -> AsyncZeroconf:
    """Sockets on the advertised addresses' interfaces only, never every interface of the host."""
    try:
        return AsyncZeroconf(interfaces=list(found.sockets), ip_version=IPVersion.V4Only)
    except (OSError, RuntimeError) as err:  # RuntimeError: the addresses vanished since we read them
        raise MdnsUnavailable(f"cannot open mDNS sockets on {', '.join(found.sockets)}: {err}") from err


class MdnsService(Component):
    """Owns at most one responder; `_reconcile` makes it match the wanted services."""

    name = "mdns"
    issue_codes = MappingProxyType(
        {
            "mdns_unavailable": Severity.WARNING,  # no other host hears the advertisement
            "mdns_home_assistant_port": Severity.INFO,  # HA discovers the host, then tries port 80
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.config = ctx.config.mdns
        self._channels = len(ctx.config.channels)
        self._wake = asyncio.Event()
        self._zc: AsyncZeroconf | None = None
        self._host: str | None = None  # the claimed host label, e.g. "homemeter-2"
        self._claimed_for: str | None = None  # the configured label it was claimed for
        self._addresses = HostAddresses((), False)
        self._names: dict[str, str] = {}  # kind -> instance name zeroconf settled on
        self._advertised: dict[str, tuple[ServiceSpec, AsyncServiceInfo]] = {}
        self._problem: str | None = None
        self._notice: str | None = None

    # ----------------------------------------------------------------- status
    @property
    def hostname(self) -> str | None:
        """The name the host is advertised under (`homemeter-2.local`); None when it is not."""
        return f"{self._host}.local" if self._zc is not None and self._host is not None else None

    def details(self) -> Mapping[str, Any]:
        # Also read from worker threads (/system/info): only atomic reads of the loop's state.
        advertised = tuple(self._advertised.values())
        off = None if self.ctx.settings.mdns else "--no-mdns"
        off = off or (None if self.config.enabled else "configuration")
        return {
            "disabledBy": off,
            "hostname": self.hostname,
            "addresses": list(self._addresses.addresses) if self._zc is not None else [],
            "services": [
                {
                    "kind": spec.kind,
                    "type": spec.type,
                    "name": info.name,
                    "port": spec.port,
                    "txt": dict(spec.txt),
                }
                for spec, info in advertised
            ],
            "warnings": [w for w in (self._problem, self._notice) if w],
        }

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if not self.ctx.settings.mdns:
            self.set_state(State.DISABLED)
            log.info("mdns off (--no-mdns): nothing is advertised")
            return
        self.set_state(State.STARTING if self.config.enabled else State.DISABLED)
        self.spawn(self._run(), "advertise")

    async def stop(self) -> None:
        await super().stop()
        await self._close()  # goodbyes for everything still advertised
        self.set_state(State.STOPPED)

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        """Never refuses: the advertiser task catches up (Modbus may have moved, too)."""
        self.config = new.mdns
        self._channels = len(new.channels)
        self._wake.set()

    # ----------------------------------------------------------------- the advertiser task
    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the pass: a change during it triggers the next one
            try:
                await self._reconcile()
            except (OSError, zeroconf.Error, HomemeterError) as err:
                await self._close()
                self._report(f"mDNS advertisement failed, retrying: {err}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def _reconcile(self) -> None:
        if not self.config.enabled:
            self.set_state(State.DISABLED)
            self._problem = None  # no longer a problem: nothing is meant to be heard
            self.clear_issue("mdns_unavailable")
            self._set_notice(None)
            if self._zc is not None:
                await self._close()
                log.info("mdns advertisement stopped (disabled in the configuration)")
            return
        found = addresses.current(self.ctx.settings.bind)
        if not found.addresses:
            await self._close()
            self._addresses = found
            self._report(found.problem)
            return
        if found.problem is not None:  # said at once, not after seconds of probing
            self._report(found.problem)
        probe = True
        if self._zc is None:
            self.set_state(State.STARTING)
            self._zc = _responder(found)
        elif found != self._addresses:
            log.info(
                "mdns addresses changed from=%s to=%s: re-announcing",
                ",".join(self._addresses.addresses),
                ",".join(found.addresses),
            )
            await self._withdraw(list(self._advertised))  # the goodbyes carry the old addresses
            # A new responder rather than `async_update_interfaces`: the old listen socket keeps the
            # group membership of a vanished address, and its interface could not join again.
            old, self._zc = self._zc, _responder(found)
            await old.async_close()
            probe = False  # the names are ours already
        self._addresses = found
        if self._claimed_for != self.config.label:
            await self._withdraw(list(self._advertised))
            self._names.clear()
            self._host = await self._claim_host(self.config.label)
            self._claimed_for = self.config.label
            probe = True
        await self._sync(self._wanted(), probe)
        self._set_notice(home_assistant_notice(self.ctx.http_port, self.config.vendor))
        self._report(found.problem)

    def _wanted(self) -> dict[str, ServiceSpec]:
        """What should be advertised now: HTTP always, Modbus only while it listens."""
        cfg, device = self.config, self.ctx.device_id
        wanted = {"http": http_service(self.ctx.http_port, device, cfg.vendor)}
        modbus = self.ctx.components.get("modbus")
        if modbus is not None:
            facts = modbus.details()
            if facts.get("listening"):
                wanted["modbus"] = modbus_service(int(facts["port"]), device, cfg.vendor, self._channels)
        return wanted

    async def _sync(self, wanted: Mapping[str, ServiceSpec], probe: bool) -> None:
        assert self._zc is not None
        gone = [kind for kind in self._advertised if kind not in wanted]
        await self._withdraw(gone)
        new: list[ServiceSpec] = []
        for kind, spec in wanted.items():
            have = self._advertised.get(kind)
            if have is None:
                new.append(spec)
            elif have[0] != spec:  # another port or TXT: same name, updated records
                info = self._info(spec, have[1].name)
                announced = await self._zc.async_update_service(info)
                self._advertised[kind] = (spec, info)
                log.info("mdns updated service=%s port=%d", info.name, spec.port)
                await announced
        await asyncio.gather(*(self._register(spec, probe) for spec in new))

    async def _register(self, spec: ServiceSpec, probe: bool) -> None:
        assert self._zc is not None and self._host is not None
        info = self._info(spec, self._names.get(spec.kind, f"{self._host}.{spec.type}"))
        asked = info.name
        # Probing finds a taken instance name and renames it (`-2`...); a re-announcement of a
        # name already ours skips the probe (`cooperating_responders`).
        announced = await self._zc.async_register_service(
            info, allow_name_change=True, cooperating_responders=not probe
        )
        self._advertised[spec.kind] = (spec, info)
        self._names[spec.kind] = info.name
        if info.name != asked:
            log.warning("mdns service name taken name=%s: advertising as %s", asked, info.name)
        await announced
        log.info("mdns advertising service=%s host=%s port=%d", info.name, self.hostname, spec.port)

    def _info(self, spec: ServiceSpec, name: str) -> AsyncServiceInfo:
        assert self._host is not None
        return AsyncServiceInfo(
            spec.type,
            name,
            port=spec.port,
            properties=dict(spec.txt),
            server=f"{self._host}.local.",
            parsed_addresses=list(self._addresses.addresses),
        )

    async def _withdraw(self, kinds: list[str]) -> None:
        """Goodbyes (TTL 0) for these services, sent before this returns."""
        assert self._zc is not None
        for kind in kinds:
            _, info = self._advertised.pop(kind)
            await (await self._zc.async_unregister_service(info))
            log.info("mdns withdrew service=%s", info.name)

    async def _claim_host(self, label: str) -> str:
        """The first of `label`, `label-2`... that no other host answers for."""
        assert self._zc is not None
        ours = set(self._addresses.addresses)
        for n in range(1, MAX_ALTERNATIVES + 1):
            candidate = numbered(label, n)
            resolver = zeroconf.AddressResolverIPv4(f"{candidate}.local.")
            if not await resolver.async_request(self._zc.zeroconf, HOST_PROBE_MS):
                return candidate
            others = set(resolver.parsed_addresses()) - ours
            if not others:  # our own answer (another instance on this host): the same host
                return candidate
            log.warning("mdns host name taken name=%s.local by=%s", candidate, ",".join(sorted(others)))
        raise MdnsUnavailable(f"{label}.local and its {MAX_ALTERNATIVES - 1} alternatives are all taken")

    async def _close(self) -> None:
        """Withdraw everything (goodbyes) and close the sockets."""
        zc, self._zc = self._zc, None
        self._advertised.clear()
        self._names.clear()
        self._host = self._claimed_for = None
        if zc is not None:
            await zc.async_close()

    # ----------------------------------------------------------------- reporting
    def _report(self, problem: str | None) -> None:
        """State from the latest pass; a new problem is a WARNING once, its end an INFO."""
        if problem != self._problem:
            if problem is not None:
                log.warning("mdns: %s", problem)
                self.raise_issue("mdns_unavailable", problem)
            else:
                if self._problem is not None:
                    log.info("mdns: advertising again on %s", ",".join(self._addresses.addresses))
                self.clear_issue("mdns_unavailable")
            self._problem = problem
        elif problem is not None:
            log.debug("mdns: still %s", problem)
        if self.config.enabled:
            self.set_state(State.DEGRADED if problem else State.RUNNING, problem)

    def _set_notice(self, notice: str | None) -> None:
        if notice != self._notice:
            if notice is not None:
                log.warning("mdns: %s", notice)
                self.raise_issue("mdns_home_assistant_port", notice)
            else:
                self.clear_issue("mdns_home_assistant_port")
            self._notice = notice
