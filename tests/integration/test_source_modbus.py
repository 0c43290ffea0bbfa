"""A Modbus TCP meter as the source: an SDM630 stand-in on pymodbus's server, read by the poller.

The stand-in's registers are laid out from the published map (the same model file), so every
quantity is checked for its address, scale, word order and sign; a silent meter and an exception
response must end as a status, never as values.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from homemeter.config.sources import MeterSource, SourceKind
from homemeter.errors import SourceUnavailable
from homemeter.meter.sources.meter_model import load_model
from homemeter.meter.sources.modbus_meter import ModbusPoller
from tests.integration.conftest import start_service, wait_until
from tests.integration.sdm_standin import MeterStandIn

SDM630 = load_model("sdm630")
HOUR = 3600.0


def f32(x: float) -> float:
    """What a float32 register holds of `x`."""
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


def kwh(wh: float) -> float:
    """An energy as an Eastron meter's float32 kWh register gives it back, in Wh."""
    return f32(wh / 1000.0) * 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# L1 imports with a capacitive load, L2 exports (PV on that phase), L3 carries nothing.
PHASES = [
    dict(voltage=230.1, current=5.25, activePower=1200.5, apparentPower=1207.5, reactivePower=-130.25,
         powerFactor=0.994, activeEnergyImported=1_234_567.0, activeEnergyExported=1_500.0,
         reactiveEnergyImported=100_250.0, reactiveEnergyExported=50_500.0),
    dict(voltage=231.7, current=3.5, activePower=-800.0, apparentPower=810.0, reactivePower=126.5,
         powerFactor=-0.988, activeEnergyImported=20_000.0, activeEnergyExported=3_456_789.0,
         reactiveEnergyImported=7_000.0, reactiveEnergyExported=8_000.0),
    dict(voltage=229.0, current=0.0, activePower=0.0, apparentPower=0.0, reactivePower=0.0,
         powerFactor=1.0, activeEnergyImported=0.0, activeEnergyExported=0.0,
         reactiveEnergyImported=0.0, reactiveEnergyExported=0.0),
]  # fmt: skip


@pytest.fixture
def sdm630() -> Iterator[MeterStandIn]:
    meter = MeterStandIn(SDM630, unit=3)
    for channel, values in enumerate(PHASES):
        meter.set(channel, **values)
    meter.set_frequency(49.98)
    with meter.running():
        yield meter


def poller_for(meter: MeterStandIn, clock: Clock | None = None, timeout: float = 2.0) -> ModbusPoller:
    config = MeterSource(name="grid", kind=SourceKind.MODBUS, url=meter.url, model="sdm630", timeout=timeout)
    return ModbusPoller(config, meter.model, clock or Clock())


async def test_every_quantity_of_the_sdm630_decoded(sdm630: MeterStandIn) -> None:
    clock = Clock()
    poller = poller_for(sdm630, clock)
    try:
        await poller.poll_once()
        assert poller.health().ok, poller.health().last_error
        assert poller.frequency == pytest.approx(f32(49.98))
        for channel, values in enumerate(PHASES):
            reading = poller.take(channel)
            assert reading is not None
            m = reading.measurement
            # Scale 1, float32 high word first, sign kept (L2's power and PF are negative: export).
            assert m.voltage == f32(values["voltage"])
            assert m.current == f32(values["current"])
            assert m.active_power == f32(values["activePower"])
            assert m.apparent_power == f32(values["apparentPower"])
            assert m.reactive_power == f32(values["reactivePower"])
            assert reading.power_factor == f32(values["powerFactor"])
            assert reading.energy.as_tuple() == (0.0,) * 5  # the first poll is the baseline

        # One second later the counters moved: kWh registers become Wh deltas, per direction.
        clock.now += 1.0
        sdm630.set(0, activeEnergyImported=1_234_567.0 + 25.0, reactiveEnergyExported=50_500.0 + 2.0)
        sdm630.set(1, activeEnergyExported=3_456_789.0 + 24.0, reactiveEnergyImported=7_000.0 + 1.5)
        await poller.poll_once()
        l1, l2, l3 = (poller.take(k) for k in range(3))
        assert l1 is not None and l2 is not None and l3 is not None
        assert l1.energy.active_energy_imported == kwh(1_234_592.0) - kwh(1_234_567.0)
        assert l1.energy.reactive_energy_exported == kwh(50_502.0) - kwh(50_500.0)
        assert l1.energy.active_energy_exported == 0.0
        assert l2.energy.active_energy_exported == kwh(3_456_813.0) - kwh(3_456_789.0)
        assert l2.energy.reactive_energy_imported == kwh(7_001.5) - kwh(7_000.0)
        assert l2.energy.active_energy_imported == 0.0
        # The SDM630 has no per-phase apparent energy: integrated from the apparent power.
        assert l1.energy.apparent_energy == pytest.approx(f32(1207.5) / HOUR)
        assert l3.energy.as_tuple() == (0.0,) * 5
        # Three phases in two requests: 0x0000..0x0047 and the per-phase energies from 0x015A.
        assert [(b.address, b.count) for b in poller.plan.blocks] == [(0, 72), (0x15A, 30)]
    finally:
        await poller.close()


async def test_a_silent_meter_and_an_exception_are_a_status(sdm630: MeterStandIn, tmp_path: Path) -> None:
    poller = poller_for(sdm630, timeout=0.3)
    try:
        await poller.poll_once()
        assert poller.take(0) is not None

        sdm630.mode = "silent"
        await poller.poll_once()
        assert poller.take(0) is None  # one failed poll is a blip: the last values stay
        await poller.poll_once()
        health = poller.health()
        assert (health.state, health.ok) == ("unreachable", False)
        assert "no answer from 127.0.0.1" in (health.last_error or "")
        assert "within 0.3 s" in (health.last_error or "")
        with pytest.raises(SourceUnavailable):
            poller.take(0)  # no values: the meter shows none, not zeros

        sdm630.mode = "exception"
        await poller.poll_once()
        assert "exception 4 (server device failure)" in (poller.health().last_error or "")

        sdm630.mode = "ok"
        await poller.poll_once()
        assert poller.health().ok and poller.take(1) is not None
        assert poller.counters["failures"] == 3
    finally:
        await poller.close()

    # A register the meter does not have (a wrong model file): exception 02, named with the range.
    doc = json.loads(SDM630.model_dump_json())
    doc["model"] = "sdm630-wrong"
    doc["channels"][0]["values"]["voltage"]["address"] = 0x300
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(doc))
    config = MeterSource(name="x", kind=SourceKind.MODBUS, url=sdm630.url, modelFile=str(path))
    wrong = ModbusPoller(config, load_model(path=path))
    try:
        await wrong.poll_once()
        await wrong.poll_once()
        error = wrong.health().last_error or ""
        assert "exception 2 (illegal data address)" in error and "input registers 768..769" in error
    finally:
        await wrong.close()


def test_run_with_source_modbus_gives_a_channel_per_phase(
    sdm630: MeterStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = start_service(
        tmp_path / "home",
        monkeypatch,
        speed=1.0,
        channels=4,
        source="modbus",
        source_url=sdm630.url,
        meter_model="sdm630",
    )
    try:
        wait_until(lambda: len(home.get("/api/v1/ade7953/meter-values").json()) == 3, 10, what="3 phases")
        table = home.get("/api/v1/ade7953/channel").json()
        assert [(c["label"], c["phase"], c["role"], c["active"]) for c in table] == [
            ("SDM630 L1", 1, "grid", True),
            ("SDM630 L2", 2, "grid", True),
            ("SDM630 L3", 3, "grid", True),
            ("Channel 3", 1, "load", False),
        ]
        values = home.get("/api/v1/ade7953/meter-values").json()
        assert [v["data"]["activePower"] for v in values] == [1200.5, -800.0, 0.0]
        assert home.get("/api/v1/ade7953/grid-frequency").json()["gridFrequency"] == pytest.approx(
            49.98, abs=0.01
        )
    finally:
        home.stop()


def test_source_modbus_without_a_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from homemeter.cli import main

    code = main(
        ["--data-dir", str(tmp_path), "run", "--source", "modbus", "--source-url", "modbus://127.0.0.1"]
    )
    assert code == 2
    assert "--source modbus needs --meter-model or --meter-model-file" in capsys.readouterr().err


def test_sources_configured_live_over_rest(
    sdm630: MeterStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = start_service(tmp_path / "home", monkeypatch, speed=1.0, channels=3, source="config")
    try:
        assert home.get("/api/v1/sources/config").json() == {"meters": [], "channels": []}
        assert home.get("/api/v1/sources/status").json()["state"] == "running"
        grid = {"name": "grid", "kind": "modbus", "url": sdm630.url, "user": "admin", "password": "",
                "model": "sdm630", "modelFile": None, "pollInterval": 0.5, "timeout": 1.0}  # fmt: skip
        body = {"meters": [grid], "channels": [{"channel": 0, "source": "grid", "sourceChannel": 1}]}
        assert home.request("PUT", "/api/v1/sources/config", json=body).status_code == 200
        wait_until(
            lambda: (
                [v["data"]["activePower"] for v in home.get("/api/v1/ade7953/meter-values").json()]
                == [-800.0]
            ),
            10,
            what="channel 0 showing the SDM630's L2",
        )
        assert home.get("/api/v1/sources/status").json()["details"]["meters"][0]["url"] == sdm630.url

        # A model file that cannot be read: 409, and the meter in use stays.
        missing = {**grid, "model": None, "modelFile": str(tmp_path / "missing.json")}
        answer = home.request("PUT", "/api/v1/sources/config", json={**body, "meters": [missing]})
        assert answer.status_code == 409 and "missing.json" in answer.json()["error"]
        assert home.get("/api/v1/sources/config").json()["meters"][0]["model"] == "sdm630"
        # A channel mapped to a meter that is not listed: 400 naming it.
        wrong = {**body, "channels": [{"channel": 0, "source": "nope", "sourceChannel": 0}]}
        answer = home.request("PUT", "/api/v1/sources/config", json=wrong)
        assert answer.status_code == 400 and "unknown meter 'nope'" in answer.json()["error"]
    finally:
        home.stop()
