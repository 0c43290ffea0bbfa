"""Wiring and lifecycle: build the source, meter and stores, run every component, shut down cleanly.

Shutdown order matters for energy: HTTP and the meter stop first, the meter publishes its final
snapshot, the components stop in reverse order, and the energy persister (entered first) saves last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from homemeter.api.app import build_app
from homemeter.api.http_protocol import GuardedHttpToolsProtocol
from homemeter.api.services import RequestStats, Services
from homemeter.component import ComponentFactory, Components, Context
from homemeter.config.app import AppConfig
from homemeter.config.settings import Settings
from homemeter.errors import PortInUse, SourceUnavailable, StoreError
from homemeter.integrations.ade7953 import Ade7953Status
from homemeter.integrations.influxdb.writer import InfluxDbWriter
from homemeter.integrations.mdns.service import MdnsService
from homemeter.integrations.modbus.service import ModbusService
from homemeter.integrations.mqtt.publisher import MqttPublisher
from homemeter.integrations.sources import RemoteMeters
from homemeter.logs.control import LogControl
from homemeter.logs.ring import RingHandler
from homemeter.meter.clock import MeterClock
from homemeter.meter.payloads import SnapshotBytes, meter_values
from homemeter.meter.sampler import Meter
from homemeter.meter.source import SampleSource
from homemeter.meter.sources.ade7953 import emulated_source, hardware_source
from homemeter.meter.sources.remote_meters import REMOTE_KINDS, remote_source
from homemeter.meter.sources.simulator import HouseholdSimulator
from homemeter.store.config import Applier, ConfigService, ConfigStore
from homemeter.store.credentials import CREDENTIALS_FILE, CredentialStore, generate_password
from homemeter.store.energy_store import EnergyStore
from homemeter.store.files import FILES_DIR
from homemeter.store.history import HistoryArchive
from homemeter.store.identity import device_id
from homemeter.store.persister import EnergyPersister
from homemeter.store.run_state import record_clean_stop, record_start
from homemeter.system.cpu_load import CpuHistory
from homemeter.system.issues import IssueRegistry
from homemeter.system.restart import Restart

log = logging.getLogger(__name__)

#: Everything that runs beside the meter, in start order. They stop in reverse order: the energy
#: persister, first here, saves the final totals last. A new consumer is one module and one line.
COMPONENTS: tuple[ComponentFactory, ...] = (
    EnergyPersister,
    HistoryArchive,
    ModbusService,
    MqttPublisher,
    MdnsService,  # after Modbus: it advertises the port Modbus bound
    Ade7953Status,
    InfluxDbWriter,
    RemoteMeters,  # polls remote meters (--source energyme|modbus|config), their status and issues
)

PASSWORD_ENV = "HOMEMETER_ADMIN_PASSWORD"
HTTP_GRACE_S = 5  # s a stop waits for HTTP requests in flight


def prepare_data_dir(path: Path) -> None:
    """Create the data directory and prove it is writable, with an error that says what to do."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise StoreError(
            f"data directory {path} is not usable ({err.strerror}); "
            "choose another with --data-dir or fix its permissions"
        ) from err


def bind_socket(host: str, port: int, what: str, flag: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        hint = "run as root or grant CAP_NET_BIND_SERVICE" if port < 1024 else "free the port"
        raise PortInUse(
            f"cannot listen for {what} on {host}:{port} ({err.strerror}); "
            f"{hint}, or choose another port with {flag}"
        ) from err
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def make_source(settings: Settings) -> SampleSource:
    if settings.source == "simulator":
        return HouseholdSimulator(seed=settings.seed, channel_count=settings.channels)
    if settings.source == "ade7953":
        return hardware_source(settings.ade7953, settings.channels)
    if settings.source == "ade7953-emulator":
        return emulated_source(settings.seed, settings.channels, settings.ade7953.board)[0]
    if settings.source in REMOTE_KINDS:
        return remote_source(settings)
    raise SourceUnavailable(
        f"unknown source {settings.source!r}: choose simulator, ade7953, ade7953-emulator, "
        f"{', '.join(REMOTE_KINDS)}"
    )


def ensure_credentials(store: CredentialStore) -> None:
    """Set the admin password on first start: from the environment, else generated and shown once."""
    if store.load() is not None:
        return
    password = os.environ.get(PASSWORD_ENV)
    if password:
        store.set_password(password)
        log.info("admin password set from %s", PASSWORD_ENV)
        return
    password = generate_password()
    store.set_password(password)
    # Shown once on the terminal, never logged: only its digest hashes are stored.
    print(f"homemeter: first start, user 'admin', generated password: {password}", flush=True)
    print("homemeter: it is not stored in clear; change it with 'homemeter passwd'", flush=True)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def report_start_issues(issues: IssueRegistry, credentials: CredentialStore) -> None:
    """A recovery made during start is over, but the user should hear of it once."""
    if credentials.mode_fixed_from is not None:
        issues.event(
            "credentials_mode_fixed",
            f"The credentials file had mode {credentials.mode_fixed_from:o} (readable by others) "
            "and was restricted to 0600; consider changing the password",
        )


def meter_applier(meter: Meter) -> Applier:
    """Configuration changes reach the meter live, without a restart."""

    async def apply(old: AppConfig, new: AppConfig) -> None:
        for before, after in zip(old.channels, new.channels, strict=True):
            if before != after:
                await meter.apply_channel(after)
        if old.sampleTime != new.sampleTime:
            meter.set_sample_time(new.sampleTime)

    return apply


def open_config(settings: Settings, source: SampleSource) -> tuple[ConfigStore, AppConfig]:
    """The stored configuration, resized to `--channels` (and saved if that changed it)."""
    prepare_data_dir(settings.data_dir)
    (settings.data_dir / FILES_DIR).mkdir(exist_ok=True)
    config_store = ConfigStore(settings.data_dir)
    config = config_store.load(lambda: source.factory_channels(settings.channels))
    have = config.channels[: settings.channels]
    channels = have + source.factory_channels(settings.channels)[len(have) :]
    if channels != config.channels:
        config = config.model_copy(update={"channels": channels})
        config_store.save(config)
    return config_store, config


def http_server(services: Services) -> _EmbeddedUvicorn:
    return _EmbeddedUvicorn(
        uvicorn.Config(
            build_app(services),
            lifespan="off",
            log_config=None,
            access_log=False,
            http=GuardedHttpToolsProtocol,  # httptools with deadlines for request heads and bodies
            server_header=False,
            timeout_graceful_shutdown=HTTP_GRACE_S,
        )
    )


@dataclass
class Runtime:
    """Everything one run owns; `build_runtime` makes it, `serve` runs it and stops it in order."""

    settings: Settings
    meter: Meter
    energy_store: EnergyStore
    components: Components
    services: Services
    http_sock: socket.socket
    stop: asyncio.Event


def build_runtime(
    settings: Settings,
    logs: RingHandler,
    stop: asyncio.Event,
    components: Sequence[ComponentFactory] = COMPONENTS,
) -> Runtime:
    """Open the stores, bind the HTTP port and wire the meter to every component (nothing runs yet)."""
    source = make_source(settings)
    config_store, config = open_config(settings, source)
    # Ports first: a port in use must end the start with one line, before anything is logged.
    http_sock = bind_socket(settings.bind, settings.http_port, "HTTP", "--http-port")
    credentials = CredentialStore(settings.data_dir / CREDENTIALS_FILE)
    ensure_credentials(credentials)
    energy_store = EnergyStore(settings.data_dir)
    totals = energy_store.open()
    start_info = record_start(settings.data_dir)
    meter = Meter(
        source,
        config.channels,
        totals,
        clock=MeterClock(settings.speed, settings.clock_start),
        sample_time_ms=config.sampleTime,
    )
    issues = IssueRegistry()
    report_start_issues(issues, credentials)
    http_port = http_sock.getsockname()[1]
    config_service = ConfigService(config_store, config)
    ctx = Context(
        settings, config, meter, issues, device_id(settings.data_dir), energy_store, http_port,
        source=source, config_service=config_service,
    )  # fmt: skip
    running = Components(components, ctx)
    log_control = LogControl(logs)
    config_service.subscribe("meter", meter_applier(meter))
    config_service.subscribe("logs", log_control.apply)
    for component in running:
        config_service.subscribe(component.name, component.apply)
    services = Services(
        meter=meter,
        control=meter,
        meter_values=SnapshotBytes(lambda: meter.latest, meter_values),
        config=config_service,
        components=running,
        factory_channels=source.factory_channels,
        credentials=credentials.current,  # cached: a password change applies to the next request
        device_id=ctx.device_id,
        started_monotonic=time.monotonic(),
        data_dir=settings.data_dir,
        credential_store=credentials,
        restart=Restart(stop),
        log_control=log_control,
        issues=issues,
        logs=logs,
        start=start_info,
        cpu=CpuHistory(),
        stats=RequestStats(),
    )
    return Runtime(settings, meter, energy_store, running, services, http_sock, stop)


async def serve(rt: Runtime) -> str | None:
    """Run until SIGINT/SIGTERM (or `rt.stop` is set); the restart reason, if one was asked."""
    svc = rt.services
    http = http_server(svc)
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():  # tests run serve() in a thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, rt.stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(svc.log_control)
            svc.log_control.apply_udp(svc.config.current.udpLog)
            await stack.enter_async_context(rt.components)
            # Registered after the components: it runs first at exit, so they see the final snapshot.
            stack.callback(rt.meter.publish)
            http_task = asyncio.create_task(http.serve(sockets=[rt.http_sock]), name="http")
            tasks = [
                asyncio.create_task(rt.meter.run(), name="meter"),
                asyncio.create_task(svc.cpu.run(), name="cpu-history"),
                http_task,
            ]
            stack.push_async_callback(_cancel, tasks)
            shown = "localhost" if rt.settings.bind in ("0.0.0.0", "::") else rt.settings.bind
            print(f"homemeter: serving http://{shown}:{rt.settings.http_port}/", flush=True)
            await _until_stopped(rt.stop, tasks)
            # Graceful: stop accepting, let requests in flight finish (a client polling across a
            # restart sees a refused connection, never a 500 from a half-stopped service).
            http.should_exit = True
            await asyncio.wait([http_task], timeout=HTTP_GRACE_S + 1)
    finally:
        rt.energy_store.close()
        record_clean_stop(rt.settings.data_dir)
        log.info("stopped; energy totals saved")
    return svc.restart.reason


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for `stop`; a task that ends first with an error ends the run with that error."""
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _build_and_serve(settings: Settings, logs: RingHandler) -> str | None:
    return await serve(build_runtime(settings, logs, asyncio.Event()))


def run(settings: Settings, logs: RingHandler) -> None:
    """Blocking entry point used by the CLI; uses uvloop where available."""
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with contextlib.suppress(ImportError):  # uvloop is absent only off Linux
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        restart = runner.run(_build_and_serve(settings, logs))
    sys.stdout.flush()
    if restart is not None:
        print(f"homemeter: restarting ({restart})", flush=True)
        sys.stderr.flush()
        # The same interpreter and command line (`-m homemeter.cli ...` or the console script);
        # our sockets are close-on-exec, so the new process can bind the same ports.
        os.execv(sys.executable, sys.orig_argv)
