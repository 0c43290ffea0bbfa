"""The `homemeter` command: run the service; offline: set the password, import a device, simulate."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from homemeter import __version__
from homemeter.config.ade7953 import Ade7953Wiring
from homemeter.config.app import describe
from homemeter.errors import ConfigError, HomemeterError
from homemeter.logs.ring import RingHandler, setup_logging

if TYPE_CHECKING:
    from homemeter.store.history_import import HistoryImport

EXIT_ERROR = 2  # any HomemeterError: the message says what to fix


def default_data_dir() -> Path:
    """/var/lib/homemeter as root (or under systemd's StateDirectory), else the XDG data dir."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/homemeter")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "homemeter"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"HOMEMETER_{name}", default)


def _env_flag(name: str) -> bool:
    return os.environ.get(f"HOMEMETER_{name}", "").lower() in ("1", "true", "yes", "on")


def _global_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The options every command takes, before or after its name.

    The top-level parser holds the defaults; each command's copy has none (SUPPRESS), so a value
    given after the command name overrides one given before it and an absent one changes nothing.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default(Path(_env("DATA_DIR", str(default_data_dir())))),
        help=f"where configuration, credentials and energy totals live (default: {default_data_dir()})",
    )
    parser.add_argument(
        "--log-format",
        choices=("logfmt", "json"),
        default=default(_env("LOG_FORMAT", "logfmt")),
        help="log lines as key=value pairs or JSON objects (default: logfmt)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        default=default(_env("LOG_LEVEL", "INFO")),
        help="INFO is quiet: start-up, recoveries and problems only (default: INFO)",
    )


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand that also accepts the global options (and lists them in its --help)."""
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    command = sub.add_parser(name, parents=[common], help=summary, description=description)
    command.set_defaults(command=name)
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homemeter",
        description=(
            "Multi-channel home energy monitor. Measures up to 17 circuits (a simulated household "
            "without hardware), keeps their energy totals safe on disk and serves them over a REST "
            "API with Digest authentication and a Modbus TCP server, wire-compatible with "
            "EnergyMe-Home clients. Every option can also be set as a HOMEMETER_<NAME> "
            "environment variable (e.g. HOMEMETER_HTTP_PORT=8080)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"homemeter {__version__}")
    _global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = add_command(
        sub,
        "run",
        "run the service (the default command)",
        "Run the service until SIGINT/SIGTERM: sample the source, keep the energy totals on disk and "
        "serve the REST API, the web UI and every enabled integration.",
    )
    run.add_argument("--bind", default=_env("BIND", "0.0.0.0"), help="listen address (default: %(default)s)")
    run.add_argument(
        "--http-port",
        type=int,
        default=int(_env("HTTP_PORT", "80")),
        help="REST API and web UI port (default: %(default)s)",
    )
    run.add_argument(
        "--modbus-port",
        type=int,
        default=_int_or_none(_env("MODBUS_PORT", "")),
        help="Modbus TCP port (default: the configuration's, 502)",
    )
    run.add_argument(
        "--no-mdns",
        action="store_true",
        default=_env_flag("NO_MDNS"),
        help="do not advertise the service over mDNS/DNS-SD",
    )
    run.add_argument(
        "--source",
        choices=("simulator", "ade7953", "ade7953-emulator", "energyme", "modbus", "config"),
        default=_env("SOURCE", "simulator"),
        help="measurement source: the built-in household simulator, an ADE7953 board over SPI, "
        "the ADE7953 driver on an emulated board that measures the simulator, an EnergyMe-Home device "
        "or a Modbus TCP meter at --source-url, or the meters of the configuration's `sources` "
        "section (default: %(default)s)",
    )
    run.add_argument(
        "--seed",
        type=int,
        default=int(_env("SEED", "0")),
        help="simulator seed: the same seed gives the same household (default: %(default)s)",
    )
    run.add_argument(
        "--speed",
        type=float,
        default=float(_env("SPEED", "1")),
        help="simulated seconds per real second, e.g. 60 to watch a day in 24 minutes (default: %(default)s)",
    )
    run.add_argument(
        "--start-at",
        type=_moment,
        default=_env("START_AT", ""),  # a string: argparse converts it, and reports a bad one
        metavar="MOMENT",
        help="the meter's clock at start, ISO 8601 (2026-06-21T12:00Z; without a zone: UTC), e.g. to "
        "watch the simulated household's noon at night; before the energy history's newest hour, hours "
        "are archived again once the clock passes it (default: now)",
    )
    run.add_argument(
        "--channels",
        type=int,
        choices=range(1, 18),
        metavar="N",
        default=int(_env("CHANNELS", "17")),
        help="number of channels, 1..17: channel 0 plus N-1 multiplexed (default: %(default)s)",
    )
    _board_options(run)
    _remote_options(run)
    add_command(
        sub,
        "passwd",
        "set the admin password offline (reads it from HOMEMETER_ADMIN_PASSWORD or asks)",
        "Set the admin password in the data directory; only its digest hashes are stored. A running "
        "service picks the new one up at its next restart.",
    )
    discover = add_command(
        sub,
        "discover",
        "list homemeter and EnergyMe devices on the network (mDNS)",
        "Browse the local network over mDNS/DNS-SD for homemeter and EnergyMe devices and list each "
        "one's host name, addresses, HTTP and Modbus ports and TXT records, as Home Assistant sees "
        "them. Use it when a client does not find a device: a device missing here is not advertised "
        "on this network segment (mDNS does not cross routers).",
    )
    discover.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        help="seconds to listen for answers; devices on busy networks may need more (default: %(default)s)",
    )
    discover.add_argument(
        "--all", action="store_true", help="list every _http._tcp and _modbus._tcp service, not only devices"
    )
    discover.add_argument("--json", action="store_true", help="print a JSON array of the services found")
    _import_commands(sub)
    _simulate_command(sub)
    _calibrate_command(sub)
    return parser


def _import_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stopped = (
        "The service must be stopped (it owns the data directory); with it running, restore through "
        "POST /api/v1/restore/configuration instead."
    )
    from_file = add_command(
        sub,
        "import-device-backup",
        "import a backup of an EnergyMe-Home device (configuration JSON or filesystem tar) offline",
        "Import the JSON file the device's Update page (or GET /api/v1/backup/configuration) "
        "downloads into the data directory: channels, custom MQTT, InfluxDB, sample time and "
        "calibration become homemeter's configuration, and the energy counters raise homemeter's "
        "totals (never lower them). Keys without meaning on Linux (Wi-Fi, LED, button, ...) are "
        "listed as skipped. Validated whole before anything is written. "
        "Given the device's filesystem backup (littlefs_backup_<id>_<time>.tar) instead, its "
        "energy/ history files (daily, monthly, yearly; plain or gzip) are added to the energy "
        "history: only hours it does not have yet, counter decreases listed and never counted as "
        "energy, the device's other files listed as skipped; import the configuration first (the "
        "channels' roles and groups decide where the history is credited). " + stopped,
    )
    from_file.add_argument(
        "file",
        type=Path,
        help="config_backup_<id>_<time>.json, or littlefs_backup_<id>_<time>.tar (the device's filesystem)",
    )
    from_file.add_argument(
        "--force",
        action="store_true",
        help="import although the backup's device ID is not this installation's (always so for a "
        "device's backup: the device's check, kept on purpose)",
    )
    live = add_command(
        sub,
        "import-device",
        "import the settings and energy totals of a running EnergyMe-Home device offline",
        "Read a running device's configuration backup, its channels' live energy counters and its "
        "energy history files over its REST API (HTTP Digest), with a progress bar, then write "
        "them into the data directory as import-device-backup does. The password comes from "
        "HOMEMETER_DEVICE_PASSWORD or is asked for. Nothing is written unless everything was "
        "read; run it again after an interruption, or later to catch up: totals are only ever "
        "raised and only history hours not imported yet are added. " + stopped,
    )
    live.add_argument("url", help="the device's address, e.g. http://192.168.1.50 (http:// is assumed)")
    live.add_argument("--user", default="admin", help="the device's user (default: %(default)s)")


def _simulate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = add_command(
        sub,
        "simulate",
        "fill the data directory with N days of simulated energy history",
        "Compute N days of the seeded household's history, ending now, into the data directory: the "
        "hourly energy archive and the energy totals, consistent with each other, so a new user sees "
        "full charts at once. A year of 17 channels takes about a minute. A data directory that "
        "already has history or energy is refused unless --replace. Run the service on it afterwards.",
    )
    simulate.add_argument("--days", type=_days, required=True, help="days of history, e.g. 30 or 365")
    simulate.add_argument(
        "--until",
        type=_iso_time,
        default=None,
        help="end of the history as an ISO 8601 time, e.g. 2026-01-31T12:00:00+00:00 (default: now)",
    )
    simulate.add_argument(
        "--seed", type=int, default=int(_env("SEED", "0")), help="simulator seed (default: %(default)s)"
    )
    simulate.add_argument(
        "--channels",
        type=int,
        choices=range(1, 18),
        metavar="N",
        default=int(_env("CHANNELS", "17")),
        help="number of channels, 1..17 (default: %(default)s)",
    )
    simulate.add_argument(
        "--replace", action="store_true", help="discard the history and energy totals already there"
    )


def _calibrate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cal = add_command(
        sub,
        "calibrate",
        "calibrate a channel of the running service against a reference load",
        "Put a steady load on one channel, read its true voltage and current (or active power) on a "
        "reference meter, and give them here: the running service averages its next readings of "
        "that channel, computes the ADE7953 gain corrections (power factor >= 0.99, a resistive "
        "load such as a kettle or heater) or the phase correction (a lagging power factor, 0.5 is "
        "best; do the gain step first), stores them in its calibration (ade7953/config) and "
        "writes them to the chip at once. It talks to the service over its REST API "
        "(POST /api/v1/ade7953/calibrate, HTTP Digest), because the correction needs live "
        "readings and the service owns the configuration; the password comes from "
        "HOMEMETER_ADMIN_PASSWORD or is asked for. Channel 0 has its own registers; every other "
        "channel shares those of current channel B.",
    )
    port = _env("HTTP_PORT", "80")
    cal.add_argument(
        "--url",
        default=f"http://127.0.0.1:{port}",
        help="the running service (default: %(default)s, from HOMEMETER_HTTP_PORT)",
    )
    cal.add_argument("--user", default="admin", help="API user (default: %(default)s)")
    cal.add_argument("--channel", type=int, required=True, help="channel index carrying the load")
    cal.add_argument("--voltage", type=float, required=True, help="true voltage, V RMS")
    load = cal.add_mutually_exclusive_group(required=True)
    load.add_argument("--current", type=float, help="true current, A RMS")
    load.add_argument("--power", type=float, help="true active power, W (instead of --current)")
    cal.add_argument(
        "--power-factor",
        type=float,
        default=1.0,
        help="true power factor: >= 0.99 corrects the gains, lower (lagging) the phase (default: 1)",
    )
    cal.add_argument("--samples", type=int, default=5, help="readings to average (default: %(default)s)")


def _calibrate(args: argparse.Namespace) -> None:
    import httpx
    from rich.console import Console

    logging.getLogger("httpx").setLevel(logging.WARNING)
    url = args.url if "://" in args.url else f"http://{args.url}"
    password = os.environ.get("HOMEMETER_ADMIN_PASSWORD") or getpass.getpass(
        f"password of {args.user} on {url}: "
    )
    body: dict[str, Any] = {
        "channelIndex": args.channel,
        "voltage": args.voltage,
        "powerFactor": args.power_factor,
        "samples": args.samples,
    }
    body["current" if args.current is not None else "activePower"] = (
        args.current if args.current is not None else args.power
    )
    console = Console()
    try:
        with console.status(f"measuring channel {args.channel} ({args.samples} readings)"):
            answer = httpx.post(
                f"{url.rstrip('/')}/api/v1/ade7953/calibrate",
                json=body,
                auth=httpx.DigestAuth(args.user, password),
                timeout=30.0 + 16.0 * max(args.samples, 1),
            )
    except httpx.HTTPError as err:
        raise ConfigError(f"cannot reach the service at {url}: {err}") from err
    result = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
    if answer.status_code != 200:
        raise ConfigError(f"calibration refused ({answer.status_code}): {result.get('error', answer.text)}")
    measured, errors = result["measured"], result["errorPercent"]
    print(f"{result['message']}; before the correction the channel read:")
    for name, unit in (("voltage", "V"), ("current", "A"), ("activePower", "W")):
        print(f"  {name:<12} {measured[name]:10.3f} {unit:<2} ({errors[name]:+.2f} %)")
    for name, value in result["calibration"].items():
        print(f"  {name:<12} {result['previous'][name]} -> {value}")
    if not result["calibration"]:
        print("  nothing to change: the readings match the reference")


def _days(value: str) -> float:
    days = float(value)
    if not 0 < days <= 36_600:
        raise argparse.ArgumentTypeError("between 0 and 36600 days")
    return days


def _iso_time(value: str) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from err


def _int_or_none(value: str) -> int | None:
    return int(value) if value else None


def _moment(value: str) -> float | None:
    """An ISO 8601 moment as epoch seconds (a naive one is UTC); "" is None (now)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 moment such as 2026-06-21T12:00Z"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _board_options(run: argparse.ArgumentParser) -> None:
    """Where the ADE7953 board is wired (--source ade7953); the emulator uses --board only."""
    board = run.add_argument_group(
        "ADE7953 board", "wiring of the chip for --source ade7953 (install with pip install 'homemeter[pi]')"
    )
    board.add_argument(
        "--board",
        choices=("v6.0", "v6.1", "v5"),
        default=_env("BOARD", "v6.0"),
        help="analog front end: voltage divider and multiplexer inputs; v6.1 has 16 channels "
        "(default: %(default)s)",
    )
    board.add_argument(
        "--spi-device", default=_env("SPI_DEVICE", "/dev/spidev0.0"), help="SPI device (default: %(default)s)"
    )
    board.add_argument(
        "--spi-speed",
        type=int,
        default=int(_env("SPI_SPEED", "2000000")),
        help="SPI clock in Hz, at most 5000000 (default: %(default)s)",
    )
    board.add_argument(
        "--gpio-chip", default=_env("GPIO_CHIP", "/dev/gpiochip0"), help="GPIO chip (default: %(default)s)"
    )
    board.add_argument(
        "--mux-lines",
        default=_env("MUX_LINES", "17,27,22,23"),
        help="line offsets of the 74HC4067's S0,S1,S2,S3 (default: %(default)s)",
    )
    board.add_argument(
        "--reset-line",
        type=int,
        default=int(_env("RESET_LINE", "24")),
        help="line offset of the chip's RESET (default: %(default)s)",
    )
    board.add_argument(
        "--irq-line",
        default=_env("IRQ_LINE", "25"),
        help="line offset of the chip's IRQ, or 'none' to poll the status register (default: %(default)s)",
    )


def _remote_options(run: argparse.ArgumentParser) -> None:
    """Another meter as the source (--source energyme|modbus)."""
    remote = run.add_argument_group(
        "remote meter",
        "another meter as the source: --source energyme (user and password from "
        "HOMEMETER_SOURCE_USER/HOMEMETER_SOURCE_PASSWORD, else from a meter with the same URL in the "
        "configuration) or --source modbus with a register-map model",
    )
    remote.add_argument(
        "--source-url",
        default=_env("SOURCE_URL", "") or None,
        help="http://HOST[:PORT] of an EnergyMe-Home device, or modbus://HOST[:PORT][/UNIT] of a "
        "Modbus TCP meter (port 502 and unit 1 by default)",
    )
    remote.add_argument(
        "--meter-model",
        default=_env("METER_MODEL", "") or None,
        help="register map of the Modbus meter: sdm630 (three-phase, a channel per phase) or sdm120",
    )
    remote.add_argument(
        "--meter-model-file",
        type=Path,
        default=_env("METER_MODEL_FILE", "") or None,
        help="a register map of your own (JSON, see the README), instead of --meter-model",
    )


def _wiring(args: argparse.Namespace) -> Ade7953Wiring:
    """The board options as one validated model; a bad value names its option."""
    try:
        mux = tuple(int(x) for x in args.mux_lines.split(","))
        irq = None if args.irq_line.lower() == "none" else int(args.irq_line)
    except ValueError as err:
        raise ConfigError(f"--mux-lines/--irq-line: expected line numbers ({err})") from err
    try:
        return Ade7953Wiring(
            board=args.board,
            spi_device=args.spi_device,
            spi_speed_hz=args.spi_speed,
            gpio_chip=args.gpio_chip,
            mux_lines=mux,
            reset_line=args.reset_line,
            irq_line=irq,
        )
    except ValidationError as err:
        raise ConfigError(f"ADE7953 board options: {describe(err)}") from err


def _passwd(args: argparse.Namespace) -> None:
    from homemeter.app import PASSWORD_ENV, prepare_data_dir
    from homemeter.store.credentials import CREDENTIALS_FILE, CredentialStore

    prepare_data_dir(args.data_dir)
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        password = getpass.getpass("new admin password: ")
        if password != getpass.getpass("again: "):
            raise ConfigError("the two passwords differ; nothing changed")
    CredentialStore(args.data_dir / CREDENTIALS_FILE).set_password(password)
    print("homemeter: admin password changed (a running service picks it up on restart)")


def _discover(args: argparse.Namespace) -> None:
    from homemeter.integrations.mdns.discover import run

    if not 0 < args.timeout <= 600:
        raise ConfigError("--timeout: between 0 and 600 seconds")
    run(args.timeout, args.all, args.json)


def _print_report(message: str, skipped: Mapping[str, str], heading: bool = True) -> None:
    if heading:
        print(f"homemeter: {message}")
    by_reason: dict[str, list[str]] = {}
    for key, reason in skipped.items():
        by_reason.setdefault(reason, []).append(key)
    for reason, keys in by_reason.items():
        print(f"  skipped ({reason}): {', '.join(keys)}")


def _print_history(history: HistoryImport) -> None:
    from homemeter.timestamps import iso_time

    print(f"homemeter: {history.message()}")
    for name, c in history.folders.items():
        if c.files or c.rows:
            print(
                f"  {name}: {c.files} files, {c.rows} rows: {c.imported} added, {c.alreadyArchived} already "
                f"archived, {c.repeated} repeated, {c.outOfRange} outside, {c.invalid} invalid"
            )
        if c.firstProblem:
            print(f"    first invalid line: {c.firstProblem}")
    for title, changes in (("counter decrease", history.decreases), ("counter jump", history.jumps)):
        for change in changes[:10]:
            print(
                f"  {title} (not counted as energy): channel {change.channel} at {iso_time(change.hour)}: "
                f"imported {change.before[0]:.0f} -> {change.after[0]:.0f} Wh, "
                f"exported {change.before[1]:.0f} -> {change.after[1]:.0f} Wh"
            )
    _print_report("", history.skipped_files, heading=False)


def _import_device_files(args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from homemeter.store.offline_import import read_device_files, write_device_history

    history = read_device_files(args.data_dir, args.file)
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        bar = _Bar(progress)
        bar.start("writing energy history", len(history.channels))
        report = write_device_history(args.data_dir, history, channel_done=bar.advance)
    _print_history(report)


def _import_device_backup(args: argparse.Namespace) -> None:
    import tarfile

    import orjson

    from homemeter.store.offline_import import import_backup_file

    if args.file.is_file() and tarfile.is_tarfile(args.file):
        _import_device_files(args)
        return
    try:
        doc = orjson.loads(args.file.read_bytes())
    except OSError as err:
        raise ConfigError(f"cannot read {args.file}: {err.strerror}") from err
    except orjson.JSONDecodeError as err:
        raise ConfigError(f"{args.file}: Invalid JSON format: {err}") from err
    report = import_backup_file(args.data_dir, doc, __version__, args.force)
    _print_report(report.message, dict(report.skipped))


class _Bar:
    """The importer's progress on a rich progress bar: one task per part."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task: Any = None  # rich's TaskID

    def start(self, description: str, total: int) -> None:
        self._task = self._progress.add_task(description, total=total)

    def advance(self) -> None:
        self._progress.advance(self._task)


def _import_device(args: argparse.Namespace) -> None:
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from homemeter.integrations.energyme.device_import import import_device

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would hide the bar
    url = args.url if "://" in args.url else f"http://{args.url}"
    password = os.environ.get("HOMEMETER_DEVICE_PASSWORD") or getpass.getpass(
        f"password of {args.user} on {url}: "
    )
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        report = import_device(url, httpx.DigestAuth(args.user, password), args.data_dir, _Bar(progress))
    _print_report(report.message, dict(report.skipped))
    if report.history is not None:
        _print_history(report.history)


def _simulate(args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from homemeter.app import open_config
    from homemeter.config.settings import Settings
    from homemeter.meter.sources.simulator import HouseholdSimulator
    from homemeter.store.backfill import Simulation, simulate_into

    settings = Settings(data_dir=args.data_dir, seed=args.seed, channels=args.channels)
    _, config = open_config(settings, HouseholdSimulator(seed=args.seed, channel_count=args.channels))
    until = args.until if args.until is not None else time.time()
    if until > time.time() + 60:
        # The service would find its archive ahead of its clock and archive nothing until then.
        raise ConfigError("--until: the history must end now or in the past")
    columns = (
        TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} days"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    started = time.monotonic()
    with Progress(*columns) as bar:
        task = bar.add_task("days", total=args.days)
        sim = Simulation(config.channels, args.seed, args.days, until, args.replace)
        totals = simulate_into(args.data_dir, sim, lambda days: bar.update(task, completed=days))
    grid = totals[0]
    print(
        f"homemeter: {args.days:g} days of history in {args.data_dir} ({time.monotonic() - started:.1f} s); "
        f"channel 0 imported {grid.active_energy_imported / 1000:.1f} kWh, "
        f"exported {grid.active_energy_exported / 1000:.1f} kWh"
    )


def _run(args: argparse.Namespace, ring: RingHandler) -> None:
    from pydantic import SecretStr

    from homemeter.app import run
    from homemeter.config.settings import Settings

    password = os.environ.get("HOMEMETER_SOURCE_PASSWORD")
    model_file = args.meter_model_file
    run(
        Settings(
            data_dir=args.data_dir,
            bind=args.bind,
            http_port=args.http_port,
            modbus_port=args.modbus_port,
            mdns=not args.no_mdns,
            source=args.source,
            seed=args.seed,
            speed=args.speed,
            clock_start=args.start_at,
            channels=args.channels,
            ade7953=_wiring(args),
            source_url=args.source_url,
            meter_model=args.meter_model,
            meter_model_file=str(Path(model_file).resolve()) if model_file else None,
            source_user=os.environ.get("HOMEMETER_SOURCE_USER") or None,
            source_password=SecretStr(password) if password else None,
        ),
        ring,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "run"])
    ring = setup_logging(args.log_level, args.log_format)
    try:
        if args.command == "run":
            _run(args, ring)
        else:
            COMMANDS[args.command](args)
    except HomemeterError as err:
        print(f"homemeter: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return 0


#: The commands other than `run`, each a function of the parsed arguments (`add_command` declares it).
COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "passwd": _passwd,
    "discover": _discover,
    "import-device-backup": _import_device_backup,
    "import-device": _import_device,
    "simulate": _simulate,
    "calibrate": _calibrate,
}


if __name__ == "__main__":
    sys.exit(main())
