"""The `homemeter` command: run the service, change the admin password offline, simulate history."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from homemeter import __version__
from homemeter.errors import ConfigError, HomemeterError
from homemeter.logs.ring import RingHandler, setup_logging

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
        choices=("simulator", "ade7953"),
        default=_env("SOURCE", "simulator"),
        help="measurement source: the built-in household simulator or an ADE7953 over SPI "
        "(default: %(default)s)",
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
        "--channels",
        type=int,
        choices=range(1, 18),
        metavar="N",
        default=int(_env("CHANNELS", "17")),
        help="number of channels, 1..17: channel 0 plus N-1 multiplexed (default: %(default)s)",
    )
    add_command(
        sub,
        "passwd",
        "set the admin password offline (reads it from HOMEMETER_ADMIN_PASSWORD or asks)",
        "Set the admin password in the data directory; only its digest hashes are stored. A running "
        "service picks the new one up at its next restart.",
    )
    _simulate_command(sub)
    return parser


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
    from homemeter.app import run
    from homemeter.config.settings import Settings

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
            channels=args.channels,
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
    "simulate": _simulate,
}


if __name__ == "__main__":
    sys.exit(main())
