"""Two remote meters at once (`--source config`): an SDM630 grid meter and an EnergyMe device's circuits.

Checked as a user sees them: the REST meter-values and channel table, homemeter's own Modbus server
(per-channel blocks and the role aggregates summed across both meters; NaN, not 0, for the channels
of a meter that went away), the component status and the issue list, and the history archive: its
query and its hourly rows equal the live counters of both meters' channels. homemeter's meter clock
runs at `HOME_SPEED` so that hours close within seconds; the meters keep real time and homemeter's
energy follows their counters, so the archive holds exactly what they counted.
"""

from __future__ import annotations

import math
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pymodbus.client import ModbusTcpClient

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase, Role
from homemeter.config.sources import ChannelSource, MeterSource, SourceKind, SourcesConfig
from homemeter.integrations.modbus.register_map import register_map
from homemeter.meter.sources.meter_model import load_model
from homemeter.store.config import ConfigStore
from tests.integration.conftest import PASSWORD, RunningService, start_service, wait_until
from tests.integration.sdm_standin import MeterStandIn
from tests.integration.test_source_energyme import start_device

SDM630 = load_model("sdm630")
HOME_SPEED = 1800.0  # an hour of meter time every 2 s
API = "/api/v1"
ADDRESS = {r.name: r.address for r in register_map(17)}
# homemeter channel -> the device's channel: Kitchen, Heat pump, Living room (loads; the living room
# never draws less than its ~60 W standby) and an inactive one.
FROM_DEVICE = {3: 3, 4: 5, 5: 12, 6: 13}
PHASES = [
    {"voltage": 230.1, "current": 5.25, "activePower": 1200.5, "apparentPower": 1207.5,
     "reactivePower": -130.25, "powerFactor": 0.994, "activeEnergyImported": 1_000_000.0,
     "activeEnergyExported": 0.0},
    {"voltage": 231.7, "current": 3.5, "activePower": -800.0, "apparentPower": 810.0,
     "reactivePower": 126.5, "powerFactor": -0.988, "activeEnergyImported": 0.0,
     "activeEnergyExported": 2_000_000.0},
    {"voltage": 229.0, "current": 0.0, "activePower": 0.0, "apparentPower": 0.0, "reactivePower": 0.0,
     "powerFactor": 1.0},
]  # fmt: skip


def configuration(grid: MeterStandIn, device: RunningService) -> AppConfig:
    channels = [ChannelConfig.default(i).model_copy(update={"active": False}) for i in range(17)]
    for k in range(3):
        channels[k] = ChannelConfig(
            index=k,
            active=True,
            label=f"Grid L{k + 1}",
            phase=Phase(k + 1),
            groupLabel="Grid",
            role=Role.GRID,
        )
    sources = SourcesConfig(
        meters=(
            MeterSource(name="grid", kind=SourceKind.MODBUS, url=grid.url, model="sdm630", pollInterval=0.5),
            MeterSource(
                name="house",
                kind=SourceKind.ENERGYME,
                url=device.url,
                password=SecretStr(PASSWORD),
                pollInterval=0.5,
            ),
        ),
        channels=(
            *(ChannelSource(channel=k, source="grid", sourceChannel=k) for k in range(3)),
            *(ChannelSource(channel=k, source="house", sourceChannel=d) for k, d in FROM_DEVICE.items()),
        ),
    )
    return AppConfig(channels=tuple(channels), sources=sources)


@pytest.fixture
def grid() -> Iterator[MeterStandIn]:
    meter = MeterStandIn(SDM630)
    for channel, values in enumerate(PHASES):
        meter.set(channel, **values)
    meter.set_frequency(50.02)
    with meter.running():
        yield meter


def listed(service: RunningService) -> dict[int, dict[str, Any]]:
    return {c["index"]: c for c in service.get("/api/v1/ade7953/meter-values").json()}


def floats(client: ModbusTcpClient, name: str, count: int = 1) -> list[float]:
    response = client.read_holding_registers(ADDRESS[name], count=2 * count, device_id=1)
    assert not response.isError(), response
    return list(struct.unpack(f">{count}f", struct.pack(f">{2 * count}H", *response.registers)))


def test_a_grid_meter_and_a_device_in_one_homemeter(
    grid: MeterStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = start_device(tmp_path / "device", monkeypatch)
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    ConfigStore(home_dir).save(configuration(grid, device))
    home = start_service(home_dir, monkeypatch, speed=HOME_SPEED, source="config")
    client = ModbusTcpClient("127.0.0.1", port=home.modbus_port, timeout=5)
    try:
        wait_until(lambda: listed(home).keys() == {0, 1, 2, 3, 4, 5}, 10, what="both meters' channels")

        # REST: the grid phases as the SDM630 has them (PF signed by P and Q, homemeter's convention)...
        values = listed(home)
        assert values[0]["data"] | {"powerFactor": 0} == {
            "voltage": 230.1, "current": 5.25, "activePower": 1200.5, "apparentPower": 1207.5,
            "reactivePower": -130.3, "powerFactor": 0, "activeEnergyImported": 0.0,
            "activeEnergyExported": 0.0, "reactiveEnergyImported": 0.0, "reactiveEnergyExported": 0.0,
            "apparentEnergy": values[0]["data"]["apparentEnergy"],
        }  # fmt: skip
        assert values[0]["data"]["powerFactor"] == -0.994
        assert (values[1]["data"]["activePower"], values[1]["data"]["powerFactor"]) == (-800.0, -0.988)
        assert [values[k]["label"] for k in range(3)] == ["Grid L1", "Grid L2", "Grid L3"]
        # ... and the device's circuits under their own names, roles and groups; its inactive
        # channel 13 made channel 6 inactive.
        table = home.get("/api/v1/ade7953/channel").json()
        theirs = device.get("/api/v1/ade7953/channel").json()
        for mine, its in FROM_DEVICE.items():
            for key in ("label", "role", "groupLabel", "phase", "active"):
                assert table[mine][key] == theirs[its][key]
        assert table[6]["active"] is False

        # Modbus: the channel blocks and the role aggregates, summed across both meters.
        assert client.connect()
        assert floats(client, "channel_1_active_power") == [-800.0]
        assert floats(client, "grid_active_power") == [pytest.approx(400.5)]

        def loads_summed() -> bool:
            shown = listed(home)
            total = sum(shown[k]["data"]["activePower"] for k in (3, 4, 5))
            return abs(floats(client, "load_active_power")[0] - total) < 0.5 and total > 0

        wait_until(loads_summed, 5, what="the load aggregate of the device's circuits")

        # Energy from both: the grid counter moves on the SDM630, the device counts on its own.
        grid.set(0, activeEnergyImported=1_000_000.0 + 7.0)
        wait_until(
            lambda: listed(home)[0]["data"]["activeEnergyImported"] >= 6.9, 5, what="grid import counted"
        )
        wait_until(
            lambda: sum(listed(home)[k]["data"]["apparentEnergy"] for k in (3, 4, 5)) > 0.2,
            15,
            what="the device's circuits counting",
        )

        # The grid meter goes silent: only its channels lose their values, the issue names it.
        grid.mode = "silent"
        wait_until(lambda: listed(home).keys() == {3, 4, 5}, 10, what="grid channels without values")

        def unreachable_listed() -> list[dict[str, Any]]:
            issues = home.get("/api/v1/system/issues").json()["issues"]
            return [i for i in issues if i["code"] == "source_unreachable"]

        unreachable = wait_until(unreachable_listed, 5, what="the unreachable meter listed")
        assert "'grid'" in unreachable[0]["message"]
        assert "channels 0, 1, 2 show no values" in unreachable[0]["message"]
        assert "'house'" not in unreachable[0]["message"]
        status = home.get("/api/v1/system/components").json()["sources"]
        states = {m["name"]: m["state"] for m in status["details"]["meters"]}
        assert (status["state"], states) == ("degraded", {"grid": "unreachable", "house": "running"})

        # Modbus: the grid channels' measurements and the grid role's powers have no value (NaN, not a
        # 0 that reads as "nothing imported"); their energies and the device's channels read on.
        block = floats(client, "channel_0_current", 10)
        assert all(math.isnan(x) for x in block[:5]), block
        assert block[5] == pytest.approx(listed_energy(home, 0), abs=0.05)
        assert all(math.isnan(x) for x in floats(client, "grid_active_power", 4))
        assert not math.isnan(floats(client, "load_active_power")[0])
        assert all(math.isnan(x) for x in floats(client, "voltage", 2))  # channel 0's

        # The device's password never leaves the configuration file.
        backup = home.get("/api/v1/backup/configuration").text
        assert PASSWORD not in backup and "********" in backup
        assert PASSWORD not in home.get("/api/v1/system/components").text

        grid.mode = "ok"
        wait_until(lambda: listed(home).keys() == {0, 1, 2, 3, 4, 5}, 10, what="grid channels back")
        assert floats(client, "channel_0_active_power") == [1200.5]

        # History: hours close on the meter clock; the query's per-channel sums are the live
        # counters of both meters' channels (the archive starts with homemeter's first hour).
        grid.set(0, activeEnergyImported=1_000_000.0 + 19.0)
        wait_until(lambda: hours_written(home) >= 3, 20, what="three closed hours")
        check_history_query(home)
    finally:
        client.close()
        home.stop()
        device.stop()

    # The stop wrote the open hour with the final totals: the archive's last row per channel equals
    # the saved totals, channel by channel, for both meters.
    conn = sqlite3.connect(home_dir / "energy.db")
    try:
        last = conn.execute("SELECT max(hour) FROM history_hour").fetchone()[0]
        columns = "channel, active_imported, active_exported, reactive_imported, reactive_exported, apparent"
        archived = conn.execute(f"SELECT {columns} FROM history_hour WHERE hour = ?", (last,)).fetchall()
        saved = conn.execute(f"SELECT {columns} FROM energy").fetchall()
    finally:
        conn.close()
    assert sorted(archived) == sorted(saved)
    by_channel = {r[0]: r for r in saved}
    assert by_channel[0][1] == pytest.approx(19.0, abs=0.1)  # the grid meter's import (float32 kWh)
    assert sum(by_channel[k][5] for k in (3, 4, 5)) > 0.2  # the device's circuits' apparent energy


def listed_energy(service: RunningService, channel: int) -> float:
    return float(service.runtime.meter.latest.channels[channel].active_energy_imported)


def hours_written(service: RunningService) -> int:
    status = service.services.status("history")
    return 0 if status is None else int(status.counters.get("hoursWritten", 0))


def check_history_query(home: RunningService) -> None:
    """Per channel (and per role), the query's imported sums equal the live counters."""
    wide = {"from": "2000-01-01", "to": "2100-01-01", "resolution": "year"}

    def sums(by: str) -> dict[str, float]:
        body = home.get(f"{API}/history/energy", params={**wide, "by": by}).json()
        return {s["key"]: sum(v or 0.0 for v in s["imported"]) for s in body["series"]}

    def matches() -> bool:
        channels = home.runtime.meter.latest.channels
        got = sums("channel")
        # The device keeps counting between the query and the snapshot read: a poll's worth of slack.
        return (
            all(abs(got[str(k)] - channels[k].active_energy_imported) <= 0.5 for k in (0, 1, 2, 3, 4, 5))
            and abs(got["0"] - 19.0) < 0.1
        )

    wait_until(matches, 10, what="history sums equal to the live counters")
    roles = sums("role")
    live = home.runtime.meter.latest
    assert roles["grid"] == pytest.approx(live.aggregate(Role.GRID).active_energy_imported, abs=0.5)
    assert roles["load"] == pytest.approx(live.aggregate(Role.LOAD).active_energy_imported, abs=2.0)
    assert roles["load"] > 0.0
