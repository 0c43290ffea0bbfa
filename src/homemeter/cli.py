"""The `homemeter` command: run the service, or change the admin password offline."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from homemeter import __version__
from homemeter.errors import ConfigError, HomemeterError
from homemeter.logs.ring import setup_logging

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
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("DATA_DIR", str(default_data_dir()))),
        help="where configuration, credentials and energy totals live (default: %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        choices=("logfmt", "json"),
        default=_env("LOG_FORMAT", "logfmt"),
        help="log lines as key=value pairs or JSON objects (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        default=_env("LOG_LEVEL", "INFO"),
        help="INFO is quiet: start-up, recoveries and problems only (default: %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run the service (the default command)")
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
    passwd = sub.add_parser(
        "passwd",
        help="set the admin password offline (reads it from HOMEMETER_ADMIN_PASSWORD or asks)",
    )
    passwd.set_defaults(command="passwd")
    return parser


def _int_or_none(value: str) -> int | None:
    return int(value) if value else None


def _passwd(data_dir: Path) -> None:
    from homemeter.app import PASSWORD_ENV, prepare_data_dir
    from homemeter.store.credentials import CREDENTIALS_FILE, CredentialStore

    prepare_data_dir(data_dir)
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        password = getpass.getpass("new admin password: ")
        if password != getpass.getpass("again: "):
            raise ConfigError("the two passwords differ; nothing changed")
    CredentialStore(data_dir / CREDENTIALS_FILE).set_password(password)
    print("homemeter: admin password changed (a running service picks it up on restart)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ring = setup_logging(args.log_level, args.log_format)
    try:
        if args.command == "passwd":
            _passwd(args.data_dir)
            return 0
        if args.command is None:
            args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "run"])
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
    except HomemeterError as err:
        print(f"homemeter: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
