"""`homemeter import-device`: a running device read over REST with Digest auth, into a stopped
service's data directory; interrupted (nothing written) and re-run (totals only raised); then the
service started on that directory shows the device's channels, integrations and totals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from homemeter.cli import main
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.energy_store import EnergyStore
from tests.device_backups import MQTT_PASSWORD, device_backup, energy_keys
from tests.device_files import HOURS, counters, day_start, device_files, expected_hourly, lines
from tests.integration.conftest import PASSWORD, start_service
from tests.integration.device_standin import DEVICE_PASSWORD, StandInDevice, running
from tests.loopback import free_port, wait_until

API = "/api/v1"


def nvs_totals(index: int) -> EnergyTotals:
    return EnergyTotals(*(e["value"] for e in energy_keys(index).values()))


def bumped(totals: EnergyTotals, by: float) -> EnergyTotals:
    return EnergyTotals(*(v + by for v in totals.as_tuple()))


@pytest.fixture
def device() -> Iterator[StandInDevice]:
    """The device's meter ran on since its last NVS save (channels 0-3 are 150 ahead); channel 4's
    live counters read lower than NVS (the saved ones must win)."""
    live = {i: bumped(nvs_totals(i), 150.0) for i in range(4)}
    live[4] = bumped(nvs_totals(4), -500.0)
    with running(StandInDevice(device_backup(), live)) as standin:
        yield standin


def import_device(
    url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch, password: str = DEVICE_PASSWORD
) -> int:
    monkeypatch.setenv("HOMEMETER_DEVICE_PASSWORD", password)
    return main(["import-device", url, "--data-dir", str(data_dir)])


def stored_totals(data_dir: Path) -> dict[int, EnergyTotals]:
    store = EnergyStore(data_dir)
    try:
        return store.open()
    finally:
        store.close()


def test_interrupted_import_writes_nothing_and_a_rerun_completes(
    device: StandInDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    device.fail_channel = 9
    assert import_device(device.url, data, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "meter-values answered HTTP 500" in err and "nothing was written; run the command again" in err
    assert not (data / "config.json").exists() and not (data / "energy.db").exists()

    assert import_device(device.url, data, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "Device configuration restored from 588c81c47a50" in out and "wifi_ns.ip" in out
    assert "/api/v1/backup/configuration?secrets=true" in device.requests
    assert f"/api/v1/ade7953/meter-values?index={16}" in device.requests
    totals = stored_totals(data)
    assert totals[2] == bumped(nvs_totals(2), 150.0)  # live counters, fresher than NVS
    assert totals[4] == nvs_totals(4)  # NVS higher than what the meter showed: kept
    assert totals[9] == nvs_totals(9)
    assert MQTT_PASSWORD in (data / "config.json").read_text()

    device.live[2] = bumped(device.live[2], 1000.0)  # the device measured on
    assert import_device(device.url, data, monkeypatch) == 0
    assert "energy totals raised on channels [2]" in capsys.readouterr().out
    assert stored_totals(data)[2] == device.live[2]

    # The service on that directory shows the device's data; while it runs, imports are refused.
    service = start_service(data, monkeypatch)
    try:
        channels = service.get(f"{API}/ade7953/channel").json()
        assert [c["label"] for c in channels] == [f"Circuit {i}" for i in range(17)]
        assert (
            channels[3]["role"] == "inverter" and channels[1]["ctSpecification"]["scalingFraction"] == 0.015
        )
        mqtt = service.get(f"{API}/custom-mqtt/config").json()
        assert (mqtt["server"], mqtt["topic"], mqtt["password"]) == ("127.0.0.1", "house/energy", "********")
        assert service.get(f"{API}/influxdb/config").json()["bucket"] == "power"
        shown = service.get(f"{API}/ade7953/meter-values?index=2").json()
        assert shown["activeEnergyImported"] >= device.live[2].active_energy_imported - 0.05
        assert shown["apparentEnergy"] >= device.live[2].apparent_energy - 0.05
        before = len(device.requests)
        assert import_device(device.url, data, monkeypatch) == 2
        assert "homemeter is running on" in capsys.readouterr().err
        assert len(device.requests) == before  # refused before reading the device
    finally:
        service.stop()


def test_a_wrong_password_or_an_absent_device_is_a_clear_error(
    device: StandInDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert import_device(device.url, data, monkeypatch, password="energyme") == 2
    assert "refused the user name or password" in capsys.readouterr().err
    assert import_device(f"127.0.0.1:{free_port()}", data, monkeypatch) == 2
    assert "cannot read http://127.0.0.1:" in capsys.readouterr().err
    assert not (data / "config.json").exists()


def test_homemeter_can_stand_in_for_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its backup carries the device's schema, so one homemeter imports from another."""
    source = start_service(tmp_path / "source", monkeypatch)
    try:
        source.request("PATCH", f"{API}/ade7953/channel", json={"index": 5, "label": "Sauna", "active": True})
        source.request("PATCH", f"{API}/custom-mqtt/config", json={"password": "from-source-1"})
        # Some channel must have counted energy for there to be totals to import.
        wait_until(
            lambda: any(
                c["data"]["activeEnergyImported"] > 0
                for c in source.get(f"{API}/ade7953/meter-values").json()
            ),
            what="energy on the source",
        )
        assert import_device(source.url, tmp_path / "copy", monkeypatch, password=PASSWORD) == 0
        # The busiest channel then (the simulated grid is at 0 W while the battery covers the house).
        after = [source.get(f"{API}/ade7953/meter-values?index={i}").json() for i in range(17)]
        busiest = max(range(17), key=lambda i: after[i]["activeEnergyImported"])
    finally:
        source.stop()
    assert "Device configuration restored" in capsys.readouterr().out
    copied = (tmp_path / "copy" / "config.json").read_text()
    assert '"Sauna"' in copied and "from-source-1" in copied
    copied_total = stored_totals(tmp_path / "copy")[busiest].active_energy_imported
    assert 0 < copied_total <= after[busiest]["activeEnergyImported"] + 0.05


def test_the_history_files_are_read_as_the_dashboard_does_and_a_rerun_adds_only_the_new_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    start = day_start(12)
    files = device_files(start)
    data = tmp_path / "data"
    with running(StandInDevice(device_backup(), {}, files=dict(files))) as device:
        device.fail_file = next(p for p in files if "/monthly/" in p)
        assert import_device(device.url, data, monkeypatch) == 2
        assert "answered HTTP 500" in capsys.readouterr().err
        assert not (data / "energy.db").exists(), "nothing written before everything was read"

        assert import_device(device.url, data, monkeypatch) == 0
        out = capsys.readouterr().out
        assert "156 hourly rows added (yearly 96, monthly 48, daily 12)" in out
        assert "counter decrease (not counted as energy): channel 1" in out
        assert "/api/v1/list-files?folder=energy%2Fyearly" in device.requests
        assert f"/api/v1/files/{next(iter(files))}" in device.requests

        # The device measured two more hours: a re-run adds those and nothing else.
        today = next(p for p in files if p.endswith(".csv") and "/daily/" in p)
        device.files[today] += "\n".join(lines(start, range(HOURS, HOURS + 2))).encode() + b"\n"
        assert import_device(device.url, data, monkeypatch) == 0
        assert "energy history: 4 hourly rows added (yearly 0, monthly 0, daily 4)" in capsys.readouterr().out

    service = start_service(data, monkeypatch)
    try:
        day = datetime.fromtimestamp(start, UTC)
        params = {"from": day.isoformat(), "to": (day + timedelta(hours=HOURS + 1)).isoformat(), "tz": "UTC"}
        shown = service.get(f"{API}/history/energy", params=params).json()
        grid = {s["key"]: s for s in shown["series"]}["0"]["imported"]
        more = [float(counters(0, k + 1)[0] - counters(0, k)[0]) for k in (HOURS - 1, HOURS)]
        assert grid == [e[0] for e in expected_hourly(0)] + more
    finally:
        service.stop()
