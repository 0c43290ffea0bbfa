"""homemeter reading an EnergyMe-Home device: a second homemeter on the simulator plays the device.

The device is reached over real HTTP with Digest authentication (the device's REST contract), through
a loopback proxy that a test cuts to take the device off the network while it keeps counting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Role
from homemeter.config.sources import ChannelSource, MeterSource, SourceKind, SourcesConfig
from homemeter.store.config import ConfigStore
from tests.integration.conftest import PASSWORD, RunningService, start_service, wait_until
from tests.integration.tcp_proxy import tcp_proxy

# Energy grows 5x faster than real time: visible within seconds, and a 10 kW house stays below the
# 100 kW per channel a counter step may plausibly stand for.
DEVICE_SPEED = 5.0
# The device's simulated day starts at noon whenever the suite runs: at night the household draws
# about 160 W, too little for the energy these tests wait for; from noon it draws a few kW.
DEVICE_CLOCK_START = datetime(2026, 6, 21, 12, 0, tzinfo=UTC).timestamp()


def start_device(data_dir: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> RunningService:
    """A second homemeter on the simulator playing the EnergyMe device."""
    return start_service(data_dir, monkeypatch, speed=DEVICE_SPEED, clock_start=DEVICE_CLOCK_START, **options)


def homemeter_reading(url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> RunningService:
    return start_service(
        data_dir,
        monkeypatch,
        speed=1.0,
        source="energyme",
        source_url=url,
        source_user="admin",
        source_password=SecretStr(PASSWORD),
    )


def listed(service: RunningService) -> dict[int, dict[str, Any]]:
    return {c["index"]: c for c in service.get("/api/v1/ade7953/meter-values").json()}


def apparent(service: RunningService) -> float:
    """Apparent energy of all channels (it only grows, whichever way power flows)."""
    return sum(c.apparent_energy for c in service.runtime.meter.latest.channels)


class NeverDown:
    """Every sample of homemeter's totals is at least the previous one, counter by counter."""

    def __init__(self, service: RunningService) -> None:
        self.service = service
        self.last: list[tuple[float, ...]] | None = None
        self.samples = 0

    def check(self) -> None:
        now = [c.energy.as_tuple() for c in self.service.runtime.meter.latest.channels]
        if self.last is not None:
            for index, (before, after) in enumerate(zip(self.last, now, strict=True)):
                assert all(b <= a for b, a in zip(before, after, strict=True)), (index, before, after)
        self.last = now
        self.samples += 1

    def until(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        def checked() -> Any:
            self.check()
            return condition()

        return wait_until(checked, timeout=timeout, interval=0.1, what=what)


def lag(device: RunningService, home: RunningService) -> float:
    """Device total minus homemeter total: constant while following, plus what the device counted
    since the last poll (so it is smallest right after a poll)."""
    return apparent(device) - apparent(home)


def settled_lag(device: RunningService, home: RunningService) -> float:
    """The lag right after a poll: the smallest seen over two poll intervals."""
    seen: list[float] = []
    end = time.monotonic() + 2.0
    wait_until(lambda: seen.append(lag(device, home)) or time.monotonic() > end, 5, what="lag samples")
    return min(seen)


def lag_returns_to(device: RunningService, home: RunningService, settled: float, rate: float) -> None:
    """Within a few polls the lag comes back to `settled`: nothing lost, nothing counted twice."""
    tolerance = 0.5 * rate + 0.3
    wait_until(lambda: abs(lag(device, home) - settled) <= tolerance, 5, what=f"lag {settled:.2f}")


def issue(service: RunningService, code: str) -> dict[str, Any] | None:
    found = [i for i in service.get("/api/v1/system/issues").json()["issues"] if i["code"] == code]
    return found[0] if found else None


def test_values_energies_and_channels_follow_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = start_device(tmp_path / "device", monkeypatch)
    home = homemeter_reading(device.url, tmp_path / "home", monkeypatch)
    try:
        wait_until(lambda: listed(home) and listed(home).keys() == listed(device).keys(), 10, what="channels")
        # Names, roles, phases, groups and active flags come from the device.
        keys = ("index", "active", "label", "phase", "groupLabel", "role")
        ours = [{k: c[k] for k in keys} for c in home.get("/api/v1/ade7953/channel").json()]
        theirs = [{k: c[k] for k in keys} for c in device.get("/api/v1/ade7953/channel").json()]
        assert ours == theirs

        def powers_match() -> bool:
            mine, its = listed(home), listed(device)
            return all(
                abs(mine[i]["data"]["activePower"] - its[i]["data"]["activePower"])
                <= max(5.0, 0.03 * abs(its[i]["data"]["activePower"]))
                and abs(mine[i]["data"]["voltage"] - its[i]["data"]["voltage"]) <= 2.0
                for i in its
            )

        wait_until(powers_match, 10, what="powers as the device's")

        # Energy follows the device's counters: device minus homemeter stays put while both grow.
        t0, start, before = time.monotonic(), apparent(device), settled_lag(device, home)
        wait_until(lambda: apparent(device) > start + 8.0, 15, what="energy growing")
        rate = (apparent(device) - start) / (time.monotonic() - t0)
        lag_returns_to(device, home, before, rate)

        # A label changed on the device reaches homemeter's channel within a poll.
        device.request("PATCH", "/api/v1/ade7953/channel", json={"index": 1, "label": "Renamed there"})
        wait_until(
            lambda: home.get("/api/v1/ade7953/channel?index=1").json()["label"] == "Renamed there",
            5,
            what="label from the device",
        )
        status = home.get("/api/v1/system/components").json()["sources"]
        assert status["state"] == "running"
        assert status["details"]["meters"][0]["url"] == device.url
        assert status["counters"]["polls"] >= 3
    finally:
        home.stop()
        device.stop()


def test_outage_and_device_reset_never_lower_totals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    device = start_device(tmp_path / "device", monkeypatch)
    with tcp_proxy(device.http_port) as link:
        home = homemeter_reading(link.url, tmp_path / "home", monkeypatch)
        totals = NeverDown(home)
        try:
            totals.until(lambda: listed(home), 10, "first readings")
            totals.until(lambda: apparent(home) > 1.0, 10, "energy counted")
            t0, e0 = time.monotonic(), apparent(device)
            before = settled_lag(device, home)

            # Off the network: no values (not zeros), the status and the issue list say why.
            link.cut()
            totals.until(lambda: listed(home) == {}, 10, "channels without values")
            found = totals.until(lambda: issue(home, "source_unreachable"), 5, "the issue")
            assert "'energyme'" in found["message"] and link.url in found["message"]
            status = home.get("/api/v1/system/components").json()["sources"]
            assert status["state"] == "degraded"
            assert "cannot connect" in status["details"]["meters"][0]["lastError"]
            # The device counts on meanwhile.
            totals.until(lambda: time.monotonic() - t0 > 6.0, 10, "an outage of 6 s")

            # Back: what the device counted during the outage arrives once, no gap, no double count.
            link.restore()
            totals.until(lambda: listed(home), 10, "readings again")
            rate = (apparent(device) - e0) / (time.monotonic() - t0)
            assert rate * 6.0 > 3.0  # the outage alone is worth far more than the tolerance
            lag_returns_to(device, home, before, rate)
            totals.until(
                lambda: issue(home, "source_unreachable")["state"] == "cleared_unacked", 5, "issue cleared"
            )

            # The device is replaced by one whose counters start from zero, on the same address.
            high = apparent(home)
            device.stop()
            totals.until(lambda: listed(home) == {}, 10, "channels without values")
            device = start_device(tmp_path / "new-device", monkeypatch, http_port=device.http_port)
            totals.until(lambda: listed(home), 15, "readings from the new device")
            jump = totals.until(lambda: issue(home, "source_counter_jump"), 5, "the counter jump")
            assert "homemeter's totals did not go down" in jump["message"]
            assert apparent(device) < high  # the device did go down
            # And homemeter keeps counting from there.
            totals.until(lambda: apparent(home) > high + 2.0, 15, "counting again")
            assert totals.samples > 20
        finally:
            home.stop()
            device.stop()


def test_a_device_table_that_does_not_fit_is_an_issue_until_it_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = start_device(tmp_path / "device", monkeypatch)
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    channels = [ChannelConfig.default(i) for i in range(3)]
    # Channel 2 (not from the device) is in group "Kitchen" as PV; the device's Kitchen is a load.
    channels[2] = channels[2].model_copy(update={"groupLabel": "Kitchen", "role": Role.PV})
    house = MeterSource(name="house", kind=SourceKind.ENERGYME, url=device.url, password=SecretStr(PASSWORD))
    mapping = (ChannelSource(channel=1, source="house", sourceChannel=3),)
    ConfigStore(home_dir).save(
        AppConfig(channels=tuple(channels), sources=SourcesConfig(meters=(house,), channels=mapping))
    )
    home = start_service(home_dir, monkeypatch, speed=1.0, channels=3, source="config")
    try:
        found = wait_until(lambda: issue(home, "source_channels_rejected"), 10, what="the refusal")
        assert "Kitchen" in found["message"] and "role" in found["message"]
        assert home.get("/api/v1/ade7953/channel?index=1").json()["label"] == "Channel 1"

        home.request("PATCH", "/api/v1/ade7953/channel", json={"index": 2, "groupLabel": "Roof"})
        wait_until(
            lambda: home.get("/api/v1/ade7953/channel?index=1").json()["label"] == "Kitchen", 5, what="synced"
        )
        assert issue(home, "source_channels_rejected")["state"] == "cleared_unacked"
    finally:
        home.stop()
        device.stop()
