"""Waveform capture, the calibration helper and the interrupt counters, through the REST API (Digest).

The service runs on the ADE7953 driver over the emulated board (as `--source ade7953-emulator`),
built here so a test can put a known reference load on a channel, as on a calibration bench.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homemeter import cli
from homemeter.meter.source import Measurement
from homemeter.meter.sources.ade7953 import EmulatedBoard
from tests.integration.conftest import PASSWORD, RunningService, wait_until
from tests.integration.test_ade7953_service import on_emulated_board

ARM, STATUS, DATA = (f"/api/v1/ade7953/waveform/{x}" for x in ("arm", "status", "data"))
CALIBRATE = "/api/v1/ade7953/calibrate"
CONFIG = "/api/v1/ade7953/config"
STATISTICS = "/api/v1/system/statistics"
CHANNELS = 5  # mux channels come round often: quick captures of channel B


def steady(volts: float, amps: float, pf: float) -> Measurement:
    s = volts * amps
    return Measurement(volts, amps, s * pf, s * math.sqrt(1.0 - pf * pf), s)


@pytest.fixture
def chip_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningService, EmulatedBoard]]:
    with on_emulated_board(tmp_path / "data", monkeypatch, channels=CHANNELS) as running:
        yield running


def values(service: RunningService, channel: int) -> dict[str, float]:
    got: dict[str, float] = service.get("/api/v1/ade7953/meter-values", params={"index": channel}).json()
    return got


def capture(service: RunningService, channel: int) -> dict[str, Any]:
    armed = service.request("POST", ARM, json={"channelIndex": channel})
    assert armed.status_code == 200, armed.text
    wait_until(lambda: service.get(STATUS).json()["state"] == "complete", what=f"capture of {channel}")
    answer = service.get(DATA)
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    return data


def rms(xs: list[float]) -> float:
    return math.sqrt(sum(x * x for x in xs) / len(xs))


def test_waveform_capture_samples_the_chip(chip_service: tuple[RunningService, EmulatedBoard]) -> None:
    service, board = chip_service
    board.reference_loads[0] = steady(230.0, 10.0, 0.8)
    board.reference_loads[2] = steady(230.0, 4.0, 1.0)
    wait_until(lambda: abs(values(service, 0)["current"] - 10.0) < 0.1, what="the load on channel 0")

    data = capture(service, 0)
    assert data["channelIndex"] == 0 and data["voltagePhase"] == data["currentPhase"] == 1
    assert data["phaseShiftDegrees"] == 0.0
    n = data["sampleCount"]
    assert 500 <= n <= 700 and len(data["voltage"]) == len(data["current"]) == len(data["microsDelta"]) == n
    micros = data["microsDelta"]
    assert micros[0] == 0 and all(b > a for a, b in itertools.pairwise(micros))
    assert 79_000 <= micros[-1] <= 81_000  # four cycles of 50 Hz
    assert data["voltage"][0] >= 0.0 > data["voltage"][-8]  # from a positive-going zero crossing
    assert rms(data["voltage"]) == pytest.approx(230.0, rel=0.01)
    assert rms(data["current"]) == pytest.approx(10.0, rel=0.01)
    power = sum(v * i for v, i in zip(data["voltage"], data["current"], strict=True)) / n
    assert power == pytest.approx(230.0 * 10.0 * 0.8, rel=0.02)  # the current lags by acos(0.8)
    # Reading the data consumes it, as on the device.
    assert service.get(STATUS).json() == {"state": "idle", "channel": 255}
    assert service.get(DATA).status_code == 204

    # A multiplexed channel, reversed: captured on channel B once the multiplexer settled.
    assert service.request("PATCH", "/api/v1/ade7953/channel", json={"index": 2, "reverse": True}).ok
    data = capture(service, 2)
    assert rms(data["current"]) == pytest.approx(4.0, rel=0.01)
    power = sum(v * i for v, i in zip(data["voltage"], data["current"], strict=True)) / len(data["voltage"])
    assert power == pytest.approx(-920.0, rel=0.02)

    # One capture at a time; bad requests name the problem and arm nothing.
    assert service.request("POST", ARM, json={"channelIndex": 1}).ok
    busy = service.request("POST", ARM, json={"channelIndex": 0})
    assert busy.status_code == 409  # armed, capturing or complete: either way not yet read
    assert "capture" in busy.json()["error"]
    for bad in ({"channelIndex": 9}, {"channelIndex": "0"}, {}, {"channelIndex": -1}):
        assert service.request("POST", ARM, json=bad).status_code == 400, bad


def test_calibration_against_a_reference_load(
    chip_service: tuple[RunningService, EmulatedBoard],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service, board = chip_service
    board.reference_loads[0] = steady(230.0, 10.0, 1.0)
    # A known gain error: current 4 % high, voltage 2 % low.
    assert service.request("PATCH", CONFIG, json={"aIGain": 4_472_000, "aVGain": 3_969_000}).ok

    def gain_error_shows() -> bool:
        # Both gains in one reading: a window that straddles the change shows only part of it.
        v = values(service, 0)
        return v["current"] > 10.3 and abs(v["voltage"] / 225.4 - 1.0) < 0.003

    wait_until(gain_error_shows, what="the gain error in the readings")

    # Nonsense is refused with a 4xx that says why, and changes nothing.
    before = service.get(CONFIG).json()
    for bad in (
        {"channelIndex": 0, "voltage": 0, "current": 10},
        {"channelIndex": 0, "voltage": 230, "current": 0},
        {"channelIndex": 0, "voltage": 230},
        {"channelIndex": 0, "voltage": 230, "current": 10, "activePower": 2300},
        {"channelIndex": 0, "voltage": 230, "current": 10, "powerFactor": 1.5},
        {"channelIndex": 99, "voltage": 230, "current": 10},
        {"channelIndex": 0, "voltage": 230, "current": 30},  # the channel reads a third of it
    ):
        answer = service.request("POST", CALIBRATE, json=bad)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"]
    board.reference_loads[1] = steady(230.0, 0.0, 1.0)
    no_load = service.request("POST", CALIBRATE, json={"channelIndex": 1, "voltage": 230, "current": 5})
    assert no_load.status_code == 409 and "no load" in no_load.json()["error"]
    assert service.get(CONFIG).json() == before

    # The gain step from the command line, against the running service.
    monkeypatch.setenv("HOMEMETER_ADMIN_PASSWORD", PASSWORD)
    argv = ["calibrate", "--url", service.url, "--channel", "0", "--voltage", "230", "--current", "10"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Channel 0 calibrated (gain step)" in out and "aIGain" in out and "+4." in out

    def matches() -> bool:
        v = values(service, 0)
        return all(
            abs(v[key] / want - 1.0) < 0.005
            for key, want in (("voltage", 230.0), ("current", 10.0), ("activePower", 2300.0))
        )

    wait_until(matches, what="readings within 0.5 % of the reference")
    stored = service.get(CONFIG).json()
    assert stored["aIGain"] == pytest.approx(4_300_000, rel=0.003)
    assert stored["aVGain"] == pytest.approx(4_050_000, rel=0.003)

    # The phase step: a known phase error shows at a lagging power factor, the helper removes it.
    board.reference_loads[0] = steady(230.0, 10.0, 0.5)
    assert service.request("PATCH", CONFIG, json={"phCalA": 150}).ok  # ~3 degrees late
    wait_until(lambda: values(service, 0)["activePower"] < 1100.0, what="the phase error")
    answer = service.request(
        "POST", CALIBRATE, json={"channelIndex": 0, "voltage": 230, "activePower": 1150, "powerFactor": 0.5}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["step"] == "phase" and result["sharedBy"] == [0]
    assert abs(result["calibration"]["phCalA"]) <= 5 and result["previous"] == {"phCalA": 150}
    wait_until(
        lambda: abs(values(service, 0)["activePower"] / 1150.0 - 1.0) < 0.005,
        what="active power within 0.5 % at PF 0.5",
    )


def test_interrupt_counters_count_windows_and_a_chip_reset(
    chip_service: tuple[RunningService, EmulatedBoard],
) -> None:
    service, board = chip_service

    def chip_stats() -> dict[str, int]:
        stats: dict[str, int] = service.get(STATISTICS).json()["ade7953"]
        return stats

    first = wait_until(lambda: (s := chip_stats())["totalInterrupts"] > 0 and s, what="interrupts")
    later = wait_until(
        lambda: (s := chip_stats())["totalInterrupts"] > first["totalInterrupts"] + 5 and s, what="more"
    )
    assert later["cycEndInterrupts"] > first["cycEndInterrupts"]
    assert later["servicePasses"] >= later["totalHandledInterrupts"] > 0
    assert later["readingCount"] > 0 and later["resetInterrupts"] == 0 and later["zxInterrupts"] == 0

    board.power_glitch()
    after = wait_until(lambda: (s := chip_stats())["resetInterrupts"] == 1 and s, what="the reset counted")
    wait_until(lambda: chip_stats()["cycEndInterrupts"] > after["cycEndInterrupts"], what="windows again")


def test_the_simulator_captures_synthetic_waveforms_and_counts_no_interrupts(
    service: RunningService,
) -> None:
    wait_until(lambda: service.get("/api/v1/ade7953/meter-values").json(), what="a first reading")
    stats = service.get(STATISTICS).json()["ade7953"]
    assert stats["readingCount"] > 0
    assert all(stats[key] == 0 for key in stats if key not in ("readingCount", "readingCountFailure"))

    data = capture(service, 0)
    shown = values(service, 0)
    assert rms(data["voltage"]) == pytest.approx(shown["voltage"], rel=0.02)
    assert data["sampleCount"] > 500
    nobody = service.request("POST", CALIBRATE, json={"channelIndex": 0, "voltage": 230, "current": 10})
    assert nobody.status_code == 501 and "ADE7953" in nobody.json()["error"]
