"""Random bytes on the Modbus socket close only that connection (short version of `make fuzz`'s)."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz.socket_noise import modbus_noise
from tests.reliability.report import assert_held
from tests.reliability.service import Homemeter, write_config


def test_random_bytes_close_only_their_connection(tmp_path: Path) -> None:
    write_config(tmp_path / "data")
    svc = Homemeter(tmp_path / "data").start()
    try:
        assert_held(modbus_noise(svc, connections=40))
    finally:
        svc.close()
    assert "level=error" not in svc.log
