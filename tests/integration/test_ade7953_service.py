"""The service on the ADE7953 driver over the emulated board: status, issues and raw registers.

The emulated board is built here so the test can inject faults while the service runs; everything
else is the real service (`--source ade7953-emulator` builds the same source).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from homemeter import app as app_module
from homemeter.config.settings import Settings
from homemeter.meter.source import SampleSource
from homemeter.meter.sources.ade7953 import EmulatedBoard, emulated_source
from tests.integration.conftest import RunningService, start_service, wait_until

REGISTER = "/api/v1/ade7953/register"
AP_NOLOAD, AVGAIN = 0x303, 0x381


@contextmanager
def on_emulated_board(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> Iterator[tuple[RunningService, EmulatedBoard]]:
    """The service on the driver over an emulated board the test holds (faults, reference loads)."""
    boards: list[EmulatedBoard] = []

    def make_source(settings: Settings) -> SampleSource:
        source, board = emulated_source(settings.seed, settings.channels)
        boards.append(board)
        return source

    monkeypatch.setattr(app_module, "make_source", make_source)
    service = start_service(data_dir, monkeypatch, speed=10.0, **options)
    try:
        yield service, boards[0]
    finally:
        service.stop()


@pytest.fixture
def chip_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningService, EmulatedBoard]]:
    with on_emulated_board(tmp_path / "data", monkeypatch) as running:
        yield running


def chip_status(service: RunningService) -> dict[str, Any]:
    status: dict[str, Any] = service.get("/api/v1/system/components").json()["ade7953"]
    return status


def issue(service: RunningService, code: str) -> dict[str, Any] | None:
    issues = service.get("/api/v1/system/issues").json()["issues"]
    return next((i for i in issues if i["code"] == code), None)


def test_registers_status_and_recovery(chip_service: tuple[RunningService, EmulatedBoard]) -> None:
    service, board = chip_service
    wait_until(lambda: service.get("/api/v1/ade7953/meter-values").json(), what="a first reading")
    status = wait_until(lambda: (s := chip_status(service))["state"] == "running" and s, what="running")
    assert status["details"]["lineCycles"] == 20 and status["counters"]["windows"] > 0

    # Raw registers read and write the chip, verified.
    got = service.get(REGISTER, params={"address": AP_NOLOAD, "bits": 32}).json()
    assert got == {"address": AP_NOLOAD, "bits": 32, "signed": False, "value": 51_251}
    assert service.request("PUT", REGISTER, json={"address": AVGAIN, "bits": 32, "value": 4_100_000}).ok
    assert service.get(REGISTER, params={"address": AVGAIN, "bits": 32}).json()["value"] == 4_100_000
    assert (
        service.request("PUT", REGISTER, json={"address": AVGAIN, "bits": 12, "value": 1}).status_code == 400
    )
    too_big = service.request("PUT", REGISTER, json={"address": AVGAIN, "bits": 32, "value": 1 << 24})
    assert too_big.status_code == 400 and "value" in too_big.json()["error"]

    # The calibration endpoint writes the chip (the stored values win over a raw write).
    assert service.request("PATCH", "/api/v1/ade7953/config", json={"aVGain": 4_060_000}).ok
    wait_until(
        lambda: service.get(REGISTER, params={"address": AVGAIN, "bits": 32}).json()["value"] == 4_060_000,
        what="the new voltage gain in the chip",
    )

    # A stuck bus: a clear error in status and issues, quick answers, the rest of the service up.
    board.faults.stuck = 0xFF
    status = wait_until(lambda: (s := chip_status(service))["state"] == "degraded" and s, what="degraded")
    assert "does not answer" in status["lastError"]
    found = wait_until(lambda: issue(service, "ade7953_read_failures"), what="the read-failure issue")
    assert found["state"] == "active_unacked" and "stuck" in found["message"]
    started = time.monotonic()
    answer = service.get(REGISTER, params={"address": AP_NOLOAD, "bits": 32})
    assert answer.status_code == 503 and "does not answer" in answer.json()["error"]
    assert time.monotonic() - started < 5.0
    assert service.get("/api/v1/ade7953/meter-values").status_code == 200

    board.faults.stuck = None
    wait_until(lambda: chip_status(service)["state"] == "running", what="recovery", timeout=30)
    assert issue(service, "ade7953_read_failures")["state"] == "cleared_unacked"  # type: ignore[index]

    # A chip reset mid-run: detected, set up again, reported once.
    board.power_glitch()
    reset = wait_until(lambda: issue(service, "ade7953_chip_reset"), what="the chip-reset issue")
    assert "set up again" in reset["message"]
    wait_until(lambda: chip_status(service)["counters"].get("chipResets") == 1, what="one reset counted")
    assert service.get(REGISTER, params={"address": AVGAIN, "bits": 32}).json()["value"] == 4_060_000


def test_the_simulator_has_no_chip(service: RunningService) -> None:
    assert chip_status(service)["state"] == "disabled"
    answer = service.get(REGISTER, params={"address": AP_NOLOAD, "bits": 32})
    assert answer.status_code == 501
