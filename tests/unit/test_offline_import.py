"""`homemeter import-device-backup`: a device backup written into a stopped service's data directory.

Configuration and energy land on disk, totals are only raised, a re-run changes nothing, a bad
backup writes nothing, and a running service (an open energy database) is refused.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from homemeter.cli import main
from homemeter.config.roles import Role
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.backup import BackupRejected
from homemeter.store.config import ConfigStore
from homemeter.store.energy_store import EnergyStore
from homemeter.store.offline_import import (
    LOG_LEVELS_OFFLINE,
    ServiceRunning,
    current_config,
    ensure_stopped,
    import_backup_file,
)
from tests.device_backups import MQTT_PASSWORD, device_backup

VERSION = "0.1.0"


def stored_totals(data_dir: Path) -> dict[int, EnergyTotals]:
    store = EnergyStore(data_dir)
    try:
        return store.open()
    finally:
        store.close()


def seed_totals(data_dir: Path, totals: dict[int, EnergyTotals]) -> None:
    store = EnergyStore(data_dir)
    store.open()
    try:
        store.save(totals)
    finally:
        store.close()


def test_a_device_backup_lands_in_a_fresh_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    report = import_backup_file(data, device_backup(), VERSION, force=True)
    config = ConfigStore(data).load(lambda: ())
    assert config.channels[1].label == "Circuit 1" and config.channels[1].role is Role.PV
    assert config.mqtt.server == "127.0.0.1" and config.sampleTime == 1000
    raw = (data / "config.json").read_text()
    assert MQTT_PASSWORD in raw  # stored as homemeter stores secrets: in clear, in a 0600 file
    assert stat.S_IMODE((data / "config.json").stat().st_mode) == 0o600
    assert MQTT_PASSWORD not in report.message and MQTT_PASSWORD not in json.dumps(report.skipped)
    totals = stored_totals(data)
    assert totals[3] == EnergyTotals(4000.0, 400.0, 1000.0, 500.0, 4400.0) and len(totals) == 17
    assert report.skipped["adv_log_ns.printLevel"] == LOG_LEVELS_OFFLINE
    assert "wifi_ns.ssid" not in report.skipped and "wifi_ns.ip" in report.skipped
    assert "energy totals raised on channels" in report.message


def test_rerun_changes_nothing_and_higher_totals_are_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_backup_file(data, device_backup(), VERSION, force=True)
    before = (data / "config.json").read_bytes(), stored_totals(data)
    report = import_backup_file(data, device_backup(), VERSION, force=True)
    assert "no energy total raised" in report.message
    assert ((data / "config.json").read_bytes(), stored_totals(data)) == before
    seed_totals(data, {**stored_totals(data), 0: EnergyTotals(99_000.0, 0.0, 0.0, 0.0, 99_000.0)})
    report = import_backup_file(data, device_backup(), VERSION, force=True)
    assert "energy totals raised on channels [0]" in report.message
    totals = stored_totals(data)
    assert totals[0] == EnergyTotals(99_000.0, 100.0, 250.0, 125.0, 99_000.0)  # raised where lower only
    assert totals[5] == EnergyTotals(6000.0, 600.0, 1500.0, 750.0, 6000.0 * 1.1)


def test_a_role_change_starts_that_channel_from_the_devices_totals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ConfigStore(data).save(current_config(data))  # factory table: channel 1 is a load
    seed_totals(data, {1: EnergyTotals(50_000.0, 0.0, 0.0, 0.0, 50_000.0)})
    import_backup_file(data, device_backup(), VERSION, force=True)  # channel 1 becomes pv
    assert stored_totals(data)[1] == EnergyTotals(2000.0, 200.0, 500.0, 250.0, 2200.0)


def test_a_bad_backup_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    doc = device_backup()
    doc["nvs"]["channels_ns"]["ct_voltage_2"]["value"] = 7.5
    with pytest.raises(BackupRejected, match=r"channels_ns\.ct_voltage_2"):
        import_backup_file(data, doc, VERSION, force=True)
    with pytest.raises(BackupRejected, match="Use --force to override"):
        import_backup_file(data, device_backup(), VERSION, force=False)
    assert not (data / "config.json").exists() and not (data / "energy.db").exists()


def test_a_running_service_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = EnergyStore(data)
    store.open()  # what the running service holds for as long as it runs
    try:
        with pytest.raises(ServiceRunning, match="Stop it first"):
            import_backup_file(data, device_backup(), VERSION, force=True)
        assert not (data / "config.json").exists()
    finally:
        store.close()
    ensure_stopped(data)  # closed: free again


def test_the_cli_command_reports_and_refuses_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    backup = tmp_path / "config_backup.json"
    backup.write_text(json.dumps(device_backup()))
    assert main(["import-device-backup", str(backup), "--data-dir", str(data)]) == 2
    assert "Device ID mismatch" in capsys.readouterr().err
    assert main(["import-device-backup", str(backup), "--force", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "Device configuration restored from 588c81c47a50" in out
    assert "skipped (Wi-Fi and static IP" in out and "wifi_ns.ip" in out and "led_ns.brightness" in out
    backup.write_text("{not json")
    assert main(["import-device-backup", str(backup), "--force", "--data-dir", str(data)]) == 2
    assert "Invalid JSON format" in capsys.readouterr().err


def test_homemeters_own_backup_imports_offline_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_backup_file(data, device_backup(), VERSION, force=True)
    own = current_config(data).model_dump(mode="json")
    own["channels"][2]["label"] = "Garage"
    doc = {"version": 1, "type": "configuration", "deviceId": "x", "firmwareVersion": VERSION}
    report = import_backup_file(data, {**doc, "configuration": own}, VERSION, force=True)
    assert "Configuration restored" in report.message
    config = current_config(data)
    assert config.channels[2].label == "Garage"
    assert config.mqtt.password.get_secret_value() == MQTT_PASSWORD  # the masked one was kept
