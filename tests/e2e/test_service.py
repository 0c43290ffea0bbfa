"""The service as a user runs it: start, read, crash, restart, and the errors it reports."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
from pathlib import Path

import pytest
import requests

from homemeter.config.app import AppConfig
from homemeter.meter.sources.simulator import default_channel_configs
from homemeter.store.config import ConfigStore
from tests.e2e.conftest import Service
from tests.loopback import wait_until

FAST = ("--speed", "600")  # ten simulated minutes per second


def stored_totals(data_dir: Path) -> dict[int, float]:
    conn = sqlite3.connect(data_dir / "energy.db")
    try:
        return dict(conn.execute("SELECT channel, active_imported FROM energy").fetchall())
    finally:
        conn.close()


def api_totals(svc: Service) -> dict[int, float]:
    values = svc.get("/api/v1/ade7953/meter-values").json()
    return {v["index"]: v["data"]["activeEnergyImported"] for v in values}


def fast_saving_config(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    ConfigStore(data_dir).save(AppConfig(channels=tuple(default_channel_configs(17)), energySaveInterval=1.0))


def test_serves_meter_values_behind_digest_auth(service_factory: type[Service], tmp_path: Path) -> None:
    svc = service_factory(tmp_path / "data").start()
    assert requests.get(f"{svc.url}/api/v1/health", timeout=5).json()["status"] == "ok"
    assert requests.get(f"{svc.url}/api/v1/ade7953/meter-values", timeout=5).status_code == 401
    values = wait_until(lambda: svc.get("/api/v1/ade7953/meter-values").json(), what="readings")
    assert values[0]["index"] == 0 and values[0]["role"] == "grid"
    assert set(values[0]["data"]) >= {"voltage", "activePower", "activeEnergyImported"}
    assert svc.stop()[0] == 0


def test_start_at_sets_the_meter_clock_and_the_households_time_of_day(
    service_factory: type[Service], tmp_path: Path
) -> None:
    noon = 1_782_043_200.0  # 2026-06-21T12:00Z: the simulated house draws kilowatts, whenever this runs
    svc = service_factory(tmp_path / "data", extra=("--start-at", "2026-06-21T12:00Z")).start()

    def meter_time() -> float | None:
        for line in svc.get("/metrics").text.splitlines():
            if line.startswith("homemeter_meter_last_snapshot_timestamp_seconds "):
                return float(line.split()[1])
        return None

    assert noon <= wait_until(meter_time, what="the meter clock") < noon + 60
    values = wait_until(lambda: svc.get("/api/v1/ade7953/meter-values").json(), what="readings")
    # Noon's load, not the night's 160 W (the grid channel may read little: the PV covers it).
    assert sum(v["data"]["apparentPower"] for v in values) > 1000
    assert svc.stop()[0] == 0


def test_kill_9_keeps_energy_totals(service_factory: type[Service], tmp_path: Path) -> None:
    data = tmp_path / "data"
    fast_saving_config(data)
    svc = service_factory(data, extra=FAST).start()
    # Which channels draw depends on the simulated time of day: wait until some energy is counted.
    seen = wait_until(lambda: (t := api_totals(svc)) and sum(t.values()) > 0 and t, what="energy")
    wait_until(lambda: all(stored_totals(data).get(ch, 0) > seen[ch] for ch in seen if seen[ch] > 0),
               what="a periodic save after the totals were read")  # fmt: skip
    svc.stop(signal.SIGKILL)
    saved = stored_totals(data)
    assert all(saved[ch] >= seen[ch] - 0.05 for ch in seen), (saved, seen)

    again = service_factory(data, extra=FAST).start()
    after = wait_until(lambda: api_totals(again), what="readings after the restart")
    assert all(after[ch] >= round(saved[ch], 1) - 0.05 for ch in after), (after, saved)
    assert sum(after.values()) >= sum(seen.values()) - 0.5, "not reset"
    assert again.stop()[0] == 0


def test_clean_stop_saves_everything(service_factory: type[Service], tmp_path: Path) -> None:
    data = tmp_path / "data"
    svc = service_factory(data, extra=FAST).start()  # default 10 s save interval
    seen = wait_until(lambda: (t := api_totals(svc)) and sum(t.values()) > 0 and t, what="energy")
    code, _, _ = svc.stop(signal.SIGTERM)
    assert code == 0
    saved = stored_totals(data)
    assert sum(saved.values()) > 0, "the periodic save has not run yet: this is the shutdown save"
    assert all(saved[ch] >= seen[ch] - 0.05 for ch in seen), (saved, seen)


def test_port_in_use_is_one_clear_line(service_factory: type[Service], tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        svc = service_factory(tmp_path / "data", http_port=port).start(wait=False)
        code, _, err = svc.finish()
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"127.0.0.1:{port}" in lines[0] and "--http-port" in lines[0]


def test_unusable_data_dir_is_a_clear_error(service_factory: type[Service], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = service_factory(blocker / "data").start(wait=False).finish()
    assert code == 2
    assert "data directory" in err and "--data-dir" in err


def test_invalid_config_names_the_field_and_keeps_energy(
    service_factory: type[Service], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    svc = service_factory(data, extra=FAST).start()
    wait_until(lambda: sum(api_totals(svc).values()) > 0, what="energy")
    svc.stop()
    before = stored_totals(data)
    doc = json.loads((data / "config.json").read_text())
    doc["channels"][2]["role"] = "heater"
    (data / "config.json").write_text(json.dumps(doc))
    code, _, err = service_factory(data).start(wait=False).finish()
    assert code == 2 and "channels.2.role" in err
    assert stored_totals(data) == before


def test_damaged_database_recovers_from_good_copy(service_factory: type[Service], tmp_path: Path) -> None:
    data = tmp_path / "data"
    svc = service_factory(data, extra=FAST).start()
    wait_until(lambda: sum(api_totals(svc).values()) > 0, what="energy")
    svc.stop()
    good = stored_totals(data)
    (data / "energy.db").write_bytes(b"garbage" * 1000)
    again = service_factory(data, extra=FAST).start()
    code, _, err = again.stop()
    assert code == 0
    assert "recovered from last good copy" in err
    assert list(data.glob("energy.db.corrupt-*")), "the damaged file is kept for inspection"
    recovered = stored_totals(data)
    # A clean stop refreshed the good copy, so nothing was lost; the restart only added energy.
    assert sum(good.values()) > 0 and all(recovered[ch] >= good[ch] for ch in good), (recovered, good)


def test_damaged_database_without_copy_stops_with_clear_error(
    service_factory: type[Service], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    service_factory(data).start().stop()
    (data / "energy.db").write_bytes(b"garbage" * 1000)
    (data / "energy.db.bak").write_bytes(b"garbage")
    code, _, err = service_factory(data).start(wait=False).finish()
    assert code == 2 and "damaged" in err and "energy.db" in err


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_cli_explains_itself(flag: str) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "homemeter.cli", flag], capture_output=True, text=True, check=True
    ).stdout
    assert "homemeter" in out
    if flag == "--help":
        assert "--data-dir" in out and "HOMEMETER_" in out
