"""`--source ade7953`: the board options, and one clear line when the hardware cannot be opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from homemeter.cli import EXIT_ERROR, main
from homemeter.config.ade7953 import Ade7953Wiring, Board
from homemeter.errors import ConfigError
from homemeter.meter.sources.ade7953 import hardware_source


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str]:
    code = main(["run", "--data-dir", str(tmp_path), "--http-port", "0", "--source", "ade7953", *options])
    return code, capsys.readouterr().err


def test_a_missing_spi_device_ends_the_start_with_what_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(tmp_path, capsys, "--spi-device", "/dev/spidev9.9")
    assert code == EXIT_ERROR
    # Without the pi extra it says how to install it; with it, which device failed and how to enable SPI.
    assert "pip install 'homemeter[pi]'" in err or ("/dev/spidev9.9" in err and "enable SPI" in err)
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--mux-lines", "17,27,22"), "mux_lines"),
        (("--mux-lines", "17,27,22,24"), "distinct"),  # 24 is the RESET line
        (("--irq-line", "gpio25"), "line numbers"),
        (("--spi-speed", "9000000"), "spi_speed_hz"),
    ],
)
def test_bad_board_options_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], message: str
) -> None:
    code, err = run(tmp_path, capsys, *options)
    assert code == EXIT_ERROR and message in err


def test_a_board_with_fewer_channels_than_asked_is_refused() -> None:
    with pytest.raises(ConfigError, match="--channels 16"):
        hardware_source(Ade7953Wiring(board=Board.V6_1), 17)


def test_irq_line_none_means_polling() -> None:
    from homemeter.cli import _wiring, build_parser

    args = build_parser().parse_args(["run", "--irq-line", "none", "--board", "v6.1"])
    wiring = _wiring(args)
    assert wiring.irq_line is None and wiring.board is Board.V6_1
