"""The command line: global options work before and after the command, and every command explains itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from homemeter.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "/tmp/a", "--log-level", "debug", "run"],
        ["run", "--data-dir", "/tmp/a", "--log-level", "debug"],
        ["--data-dir", "/tmp/elsewhere", "run", "--data-dir", "/tmp/a", "--log-level", "DEBUG"],
    ],
)
def test_global_options_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.command, args.data_dir, args.log_level) == ("run", Path("/tmp/a"), "DEBUG")


def test_a_command_without_global_options_keeps_the_defaults() -> None:
    args = build_parser().parse_args(["passwd"])
    assert args.command == "passwd" and args.log_format == "logfmt" and args.data_dir.is_absolute()


def test_every_command_help_lists_the_global_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
        out = capsys.readouterr().out
        assert "--data-dir" in out and "--log-level" in out and len(out.splitlines()) > 5, name


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2026-06-21T12:00Z", 1_782_043_200.0),
        ("2026-06-21T12:00", 1_782_043_200.0),  # no zone: UTC
        ("2026-06-21T14:00+02:00", 1_782_043_200.0),
    ],
)
def test_start_at_sets_the_meter_clock(value: str, epoch: float) -> None:
    assert build_parser().parse_args(["run", "--start-at", value]).start_at == epoch
    assert build_parser().parse_args(["run"]).start_at is None  # now


def test_start_at_refuses_what_is_not_a_moment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--start-at", "noon"])
    assert "'noon' is not an ISO 8601 moment such as 2026-06-21T12:00Z" in capsys.readouterr().err


def test_start_at_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOMEMETER_START_AT", "2026-06-21T12:00Z")
    assert build_parser().parse_args(["run"]).start_at == 1_782_043_200.0
    monkeypatch.setenv("HOMEMETER_START_AT", "noon")  # refused like the option, not a traceback
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run"])
    assert "argument --start-at: 'noon' is not an ISO 8601 moment" in capsys.readouterr().err
