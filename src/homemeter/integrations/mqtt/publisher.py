"""The custom MQTT publisher: the component that sends the meter-values array to a broker.

One session task owns the connection: connect (aiomqtt), publish every `frequency` seconds, reconnect
with the device's back-off capped at a minute, and say goodbye (`offline`) on a clean stop. A
configuration change ends the session (DISCONNECT) and starts a new one with the new settings; the
service does not restart. Status texts are the device's (integrations.md 2.6): `Configuration
updated`, `Connected`, `Connection failed: <reason> (Attempt n). Retrying in <duration>`.

What is published, per tick:
- `<topic>`: the meter-values array, the same bytes as `GET /api/v1/ade7953/meter-values` for the
  same snapshot (`meter.payloads`), QoS 0, not retained; nothing while no channel qualifies.
- with Home Assistant discovery on: `<topic>/channel/<n>` (each listed channel's `data` object,
  retained, energies never lower than before: ha_state.py) and `<topic>/grid`;
  `<topic>/availability` (`online`, retained; `offline` as last will and at a clean stop) and the
  retained discovery message (discovery.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiomqtt
import orjson

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.errors import ConfigRejected
from homemeter.integrations.mqtt import connection
from homemeter.integrations.mqtt.discovery import (
    HA_ONLINE,
    OFFLINE,
    ONLINE,
    Topics,
    discovery_message,
    grid_state,
)
from homemeter.integrations.mqtt.ha_state import StateFloor
from homemeter.meter.payloads import meter_values
from homemeter.meter.snapshot import MeterSnapshot
from homemeter.system.issues import Severity
from homemeter.timestamps import duration

log = logging.getLogger(__name__)

CONNECT_ISSUE = "custom_mqtt_connect_failed"
CONNECT_ISSUE_AFTER_S = 120.0  # disconnected this long (enabled) -> the issue is raised
STOP_WAIT_S = 3.0  # a configuration change waits this long for a clean DISCONNECT (the device's 3 s)
GOODBYE_TIMEOUT_S = 2.0  # for the `offline` message of a clean stop
FRESH_WAIT_S = 1.0  # when due, wait this long for a new snapshot before sending the latest
LOST_RETRY_S = 1.0  # after a good connection drops, the first attempt is on the next tick
RECALL_TIMEOUT_S = 5.0  # reading our retained states back after connecting


@dataclass
class _Session:
    """One connection's settings and lifetime; `stop` asks it to say goodbye and disconnect."""

    config: MqttConfig
    topics: Topics
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class MqttPublisher(Component):
    """Publishes snapshots to the configured broker; one session at a time, replaced on changes."""

    name = "mqtt"
    issue_codes = MappingProxyType({CONNECT_ISSUE: Severity.WARNING})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.config = ctx.config.mqtt
        self._status = "Configuration updated"
        self._status_time = time.time()
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._issue_timer: asyncio.TimerHandle | None = None
        self._connected = False
        self._warned = False  # WARNING once per outage, then DEBUG
        self._due = 0.0  # loop time of the next publish: kept across reconnects (device 2.4)
        #: Channels (index -> label) in the last discovery message sent; None: none sent since start,
        #: so the first message also removes every inactive channel (it may have been announced before).
        self._announced: dict[int, str] | None = None
        self._floor = StateFloor()  # Home Assistant's energy states never go down (ha_state.py)

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.ctx.meter.on_energy_change(self._energy_reset)
        async with self._lock:
            self._begin(self.config)

    async def _energy_reset(self) -> None:
        """A deliberate reset lowered some totals: Home Assistant should see it as one."""
        self._floor.forget_dropped(self.ctx.meter.latest.channels)

    async def stop(self) -> None:
        async with self._lock:
            await self._end()
        await super().stop()

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        if new.mqtt == self.config:
            return
        cfg = new.mqtt
        if cfg.enabled and cfg.useTls:
            try:  # a file that cannot be read is refused now (409), not found out at every attempt
                await asyncio.to_thread(connection.tls_context, cfg)
            except connection.TlsSettingsError as err:
                raise ConfigRejected(str(err)) from err
        async with self._lock:
            await self._end()
            self.config = cfg
            self._set_status("Configuration updated")
            self._begin(cfg, cleanup=self._stale_discovery(old.mqtt, cfg))

    def _begin(self, cfg: MqttConfig, cleanup: tuple[str, ...] = ()) -> None:
        if not cfg.enabled:
            self.set_state(State.DISABLED)
            self.clear_issue(CONNECT_ISSUE)
            return
        session = _Session(cfg, Topics.of(cfg, self.ctx.device_id))
        self.set_state(State.STARTING)
        self._arm_issue_timer()
        session.task = self.spawn(self._run(session, cleanup), "session")
        self._session = session

    async def _end(self) -> None:
        """Stop the session: goodbye and DISCONNECT if connected, cancelled if it does not end soon."""
        session, self._session = self._session, None
        self._disarm_issue_timer()
        if session is None or session.task is None:
            return
        session.stop.set()
        done, _ = await asyncio.wait([session.task], timeout=STOP_WAIT_S)
        if not done:
            session.task.cancel()
            await asyncio.gather(session.task, return_exceptions=True)
        self._connected = False

    def _stale_discovery(self, old: MqttConfig, new: MqttConfig) -> tuple[str, ...]:
        """The old discovery topic, to empty when the prefix changed on the same broker."""
        same_broker = (old.server, old.port) == (new.server, new.port)
        moved = new.haDiscovery and old.haDiscoveryPrefix != new.haDiscoveryPrefix
        if old.enabled and old.haDiscovery and same_broker and moved:
            return (Topics.of(old, self.ctx.device_id).discovery,)
        return ()  # with discovery switched off, the new session empties its own topic

    # ----------------------------------------------------------------- status
    def _set_status(self, text: str) -> None:
        self._status, self._status_time = text, time.time()

    def details(self) -> Mapping[str, Any]:
        return {
            "status": self._status if self.config.enabled else "Disabled",
            "statusTime": self._status_time,  # epoch s: the device's "Last Attempt"
            "connected": self._connected,
        }

    def _arm_issue_timer(self) -> None:
        if self._issue_timer is None:
            loop = asyncio.get_running_loop()
            self._issue_timer = loop.call_later(CONNECT_ISSUE_AFTER_S, self._raise_connect_issue)

    def _disarm_issue_timer(self) -> None:
        if self._issue_timer is not None:
            self._issue_timer.cancel()
            self._issue_timer = None

    def _raise_connect_issue(self) -> None:
        self._issue_timer = None
        cfg = self.config
        self.raise_issue(
            CONNECT_ISSUE,
            f"Custom MQTT has not been connected to {cfg.server}:{cfg.port} for "
            f"{duration(CONNECT_ISSUE_AFTER_S)}; last status: {self._status}",
        )

    # ----------------------------------------------------------------- the session
    async def _run(self, session: _Session, cleanup: tuple[str, ...]) -> None:
        """Connect, serve, reconnect with back-off, until `session.stop`."""
        cfg, topics = session.config, session.topics
        failures = 0  # consecutive failed attempts, a lost connection included: "(Attempt n)"
        refused = 0  # consecutive failed connection attempts: they set the back-off
        while not session.stop.is_set():
            established = False
            try:
                tls = await asyncio.to_thread(connection.tls_context, cfg) if cfg.useTls else None
                async with self._client(cfg, topics, tls) as client:
                    established = True
                    failures = refused = 0
                    self._on_connected(cfg)
                    await self._serve(client, session, cleanup)
                    await self._goodbye(client, topics)
                return
            except (aiomqtt.MqttError, connection.TlsSettingsError) as err:
                failures += 1
                if established:
                    reason, delay = connection.connection_lost(err), LOST_RETRY_S
                    self._connected = False
                    self._arm_issue_timer()
                else:
                    refused += 1
                    reason, delay = connection.connect_failure(err, cfg), connection.backoff(refused)
                self._on_failure(reason, failures, delay)
            except Exception as err:  # a library surprise must not end publishing for good: retry
                log.exception("mqtt session failed unexpectedly")
                failures += 1
                refused += 1
                delay = connection.backoff(refused)
                self._connected = False
                self._arm_issue_timer()
                self._on_failure(f"MQTT_CONNECT_FAILED: unexpected error: {err!r}", failures, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.stop.wait(), delay)

    def _client(self, cfg: MqttConfig, topics: Topics, tls: ssl.SSLContext | None) -> aiomqtt.Client:
        return connection.client(cfg, self.ctx.device_id, topics.availability, OFFLINE, tls)

    def _on_connected(self, cfg: MqttConfig) -> None:
        self._connected = True
        self._disarm_issue_timer()
        self.clear_issue(CONNECT_ISSUE)
        self._set_status("Connected")
        self.set_state(State.RUNNING)
        log.info("mqtt connected broker=%s:%d topic=%s", cfg.server, cfg.port, cfg.topic)
        self._warned = False

    def _on_failure(self, reason: str, attempt: int, delay: float) -> None:
        text = f"Connection failed: {reason} (Attempt {attempt}). Retrying in {duration(delay)}"
        self._set_status(text)
        self.set_state(State.DEGRADED, reason)
        level = logging.DEBUG if self._warned else logging.WARNING
        log.log(level, "mqtt %s", text)
        self._warned = True

    async def _serve(self, client: aiomqtt.Client, session: _Session, cleanup: tuple[str, ...]) -> None:
        """Announce, then publish and listen until `session.stop` (returns) or the connection drops."""
        cfg, topics = session.config, session.topics
        if cfg.haDiscovery:
            await self._recall_states(client, topics)  # says `online` too
        else:
            await client.publish(topics.availability, ONLINE, qos=1, retain=True)
        for stale in cleanup:  # an empty retained message removes what Home Assistant knew there
            await client.publish(stale, b"", qos=1, retain=True)
        if cfg.haDiscovery:
            await client.subscribe(topics.ha_status)
            await self._announce(client, topics, self.ctx.meter.latest, force=True)
        else:
            # Removes a device announced earlier (also when switched off while homemeter was stopped).
            await client.publish(topics.discovery, b"", qos=1, retain=True)
        workers = [
            asyncio.create_task(self._publish_loop(client, cfg, topics), name="mqtt:publish"),
            asyncio.create_task(self._listen(client, topics), name="mqtt:listen"),
        ]
        stop = asyncio.create_task(session.stop.wait(), name="mqtt:stop")
        try:
            done, _ = await asyncio.wait([stop, *workers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, *workers):
                task.cancel()
            await asyncio.gather(stop, *workers, return_exceptions=True)
        for task in done:
            if task is not stop and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _goodbye(self, client: aiomqtt.Client, topics: Topics) -> None:
        # A clean DISCONNECT cancels the last will: say `offline` ourselves first.
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(topics.availability, OFFLINE, qos=1, retain=True, timeout=GOODBYE_TIMEOUT_S)
        self._connected = False

    async def _recall_states(self, client: aiomqtt.Client, topics: Topics) -> None:
        """Read our retained channel states back (the energy floors), then publish `online`.

        The broker sends the retained messages of a subscription before anything published after
        it, so our own live `online` marks the end of them.
        """
        await client.subscribe(topics.channel_wildcard)
        await client.subscribe(topics.availability)
        await client.publish(topics.availability, ONLINE, qos=1, retain=True)
        try:
            async with asyncio.timeout(RECALL_TIMEOUT_S):
                async for message in client.messages:
                    if message.topic.matches(topics.availability):
                        if not message.retain:
                            break
                        continue
                    index = topics.channel_index(message.topic.value)
                    if index is not None and isinstance(message.payload, bytes):
                        self._floor.learn(index, message.payload)
        except TimeoutError:
            log.debug("mqtt: our own online message did not come back; energy floors from memory only")
        await client.unsubscribe(topics.channel_wildcard)
        await client.unsubscribe(topics.availability)

    async def _listen(self, client: aiomqtt.Client, topics: Topics) -> None:
        """Home Assistant's birth message -> discovery again; ends with MqttError when the link drops."""
        async for message in client.messages:
            if message.topic.matches(topics.ha_status) and message.payload == HA_ONLINE:
                log.debug("home assistant online: sending discovery again")
                await client.publish(topics.availability, ONLINE, qos=1, retain=True)
                await self._announce(client, topics, self.ctx.meter.latest, force=True)

    async def _announce(
        self, client: aiomqtt.Client, topics: Topics, snap: MeterSnapshot, force: bool = False
    ) -> None:
        """Send the discovery message when the active channels or their labels changed."""
        active = {c.index: c.label for c in snap.channels if c.active}
        if active == self._announced and not force:
            return
        previous = self._announced
        if previous is None:  # unknown: remove every inactive channel once
            removed = [c.index for c in snap.channels if not c.active]
        else:
            removed = [i for i in previous if i not in active]
        payload = discovery_message(snap, topics, self.ctx.device_id, removed)
        await client.publish(topics.discovery, payload, qos=1, retain=True)
        for index in removed:  # its retained state too
            await client.publish(topics.channel(index), b"", qos=0, retain=True)
        self._announced = active
        log.debug("home assistant discovery sent channels=%d removed=%d", len(active), len(removed))

    async def _publish_loop(self, client: aiomqtt.Client, cfg: MqttConfig, topics: Topics) -> None:
        loop = asyncio.get_running_loop()
        period = float(max(cfg.frequency, 1))  # 0: every tick of one second, as the device
        while True:
            wait = self._due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            snap = await self._fresh_snapshot()
            now = loop.time()
            # A fixed grid keeps the average period exact; after a long gap, start a new one.
            self._due = self._due + period if now - self._due < period else now + period
            if cfg.haDiscovery:
                await self._announce(client, topics, snap)
            await self._publish(client, cfg, topics, snap)

    async def _fresh_snapshot(self) -> MeterSnapshot:
        """The next snapshot (a window or less away), or the latest one if none comes soon."""
        stream = self.ctx.meter.snapshots()
        await anext(stream)  # the latest, already seen
        try:
            return await asyncio.wait_for(anext(stream), FRESH_WAIT_S)
        except TimeoutError:
            return self.ctx.meter.latest

    async def _publish(
        self, client: aiomqtt.Client, cfg: MqttConfig, topics: Topics, snap: MeterSnapshot
    ) -> None:
        values = meter_values(snap)
        if not values:
            return  # as the device: nothing while no channel has a valid reading
        try:
            await client.publish(topics.values, orjson.dumps(values), qos=0, retain=False)
            self.count("published")
            if cfg.haDiscovery:
                for channel in snap.with_readings():
                    # Retained: read back after a restart, they keep the energy from going down.
                    state = self._floor.state(channel)
                    await client.publish(topics.channel(channel.index), state, qos=0, retain=True)
                await client.publish(topics.grid, orjson.dumps(grid_state(snap)), qos=0, retain=False)
        except aiomqtt.MqttError:
            self.count("publishErrors")
            raise
