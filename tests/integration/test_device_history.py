"""The device's filesystem backup (a tar of its LittleFS) into homemeter's energy history: through the
running service (`POST /api/v1/restore/filesystem`) and offline (`homemeter import-device-backup`).

The device's four days lie in last month, so every hour, day and month of them has one right
answer: the device's counter differences (tests/device_files.py), never the jump to homemeter's
own counters, and exactly as much again after a second import (nothing added).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from homemeter.cli import main
from tests.device_files import (
    DROP,
    HOURS,
    OTHER_FILES,
    counters,
    device_files,
    expected_hourly,
    filesystem_tar,
)
from tests.integration.conftest import RunningService, start_service

API = "/api/v1"
HOUR = 3600
_first_of_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
MONTH = (_first_of_month - timedelta(days=1)).replace(day=1)  # last month
START = int((MONTH + timedelta(days=10)).timestamp())  # its 11th: the four days stay inside it


def iso(k: int) -> str:
    return datetime.fromtimestamp(START + k * HOUR, UTC).isoformat()


def restore(service: RunningService, tar: bytes) -> dict[str, Any]:
    response = service.request(
        "POST", f"{API}/restore/filesystem", files={"file": ("littlefs_backup.tar", tar, "application/x-tar")}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def series(service: RunningService, resolution: str, start: str, end: str, by: str = "channel") -> Any:
    params = {"from": start, "to": end, "resolution": resolution, "tz": "UTC", "by": by}
    response = service.get(f"{API}/history/energy", params=params)
    assert response.status_code == 200, response.text
    return {s["key"]: s for s in response.json()["series"]}


def assert_device_history_shown(service: RunningService) -> None:
    """Hours, days and the month of the device's period as the query API answers them."""
    hours = series(service, "hour", iso(0), iso(HOURS - 1))
    for channel in (0, 1):
        got = list(zip(hours[str(channel)]["imported"], hours[str(channel)]["exported"], strict=True))
        assert got == expected_hourly(channel)
    days = series(service, "day", iso(0), iso(4 * 24))
    for d in range(4):
        last = min(24 * (d + 1), HOURS - 1)
        csv_difference = counters(0, last)[0] - counters(0, 24 * d)[0]
        assert days["0"]["imported"][d] == pytest.approx(csv_difference)
    month = series(service, "month", MONTH.isoformat(), _first_of_month.isoformat())
    assert month["0"]["imported"] == [pytest.approx(counters(0, HOURS - 1)[0] - counters(0, 0)[0])]
    assert month["0"]["exported"] == [pytest.approx(counters(0, HOURS - 1)[1] - counters(0, 0)[1])]
    assert month["1"]["imported"] == [pytest.approx(sum(e[0] for e in expected_hourly(1)))]


def test_the_devices_filesystem_backup_is_in_the_history_at_once_and_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = start_service(tmp_path / "data", monkeypatch)
    try:
        # As the device's configuration restore would: channel 1 is the roof's PV here.
        change = {"index": 1, "role": "pv", "groupLabel": "Roof"}
        assert service.request("PATCH", f"{API}/ade7953/channel", json=change).status_code == 200
        tar = filesystem_tar(device_files(START))
        body = restore(service, tar)
        history = body["history"]
        assert "energy history: 156 hourly rows added (yearly 96, monthly 48, daily 12)" in body["message"]
        assert history["folders"]["daily"] == {
            "files": 2, "rows": 61, "imported": 12, "alreadyArchived": 0, "repeated": 49, "outOfRange": 0,
            "invalid": 1, "firstProblem": history["folders"]["daily"]["firstProblem"],
        }  # fmt: skip
        assert "line 9" in history["folders"]["daily"]["firstProblem"]
        assert history["decreaseCount"] == 1
        assert history["decreases"][0] == {
            "channel": 1,
            "timestamp": datetime.fromtimestamp(START + DROP * HOUR, UTC).strftime("%Y-%m-%dT%H:00:00.000Z"),
            "importedBefore": counters(1, DROP - 1)[0], "importedAfter": counters(1, DROP)[0],
            "exportedBefore": 0.0, "exportedAfter": 0.0,
        }  # fmt: skip
        assert set(OTHER_FILES) <= set(history["skippedFiles"])

        assert_device_history_shown(service)
        by_role = series(service, "hour", iso(0), iso(HOURS - 1), by="role")
        assert by_role["pv"]["imported"] == pytest.approx([e[0] for e in expected_hourly(1)])

        # The device's own dashboard reads the same hours from the generated files.
        name = f"energy%2Fyearly%2F{MONTH.year}.csv.gz"
        text = gzip.decompress(service.get(f"{API}/files/{name}").content).decode()
        stamp = datetime.fromtimestamp(START + 30 * HOUR, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert f"{stamp},0,{counters(0, 30)[0]},{counters(0, 30)[1]}" in text.splitlines()

        again = restore(service, tar)["history"]
        assert again["rowsAdded"] == 0 and again["decreaseCount"] == 0
        assert sum(f["alreadyArchived"] for f in again["folders"].values()) == 2 * HOURS
        assert_device_history_shown(service)
        assert not (service.data_dir / "files" / "index.html").exists(), (
            "the device's other files are not kept"
        )
    finally:
        service.stop()


def test_the_same_tar_offline_then_the_service_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    tar = tmp_path / "littlefs_backup_588c81c47a50_2026-11-29T10:00:00.000Z.tar"
    tar.write_bytes(filesystem_tar(device_files(START), prefix="/"))
    assert main(["import-device-backup", str(tar), "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "156 hourly rows added" in out and "counter decrease (not counted as energy): channel 1" in out
    assert "skipped (not energy history, not kept): " in out
    assert main(["import-device-backup", str(tar), "--data-dir", str(data)]) == 0
    assert "0 hourly rows added" in capsys.readouterr().out

    # homemeter starts on zero totals a month after the device's last hour: its counters take
    # over just after that hour, so last month keeps the device's energy.
    service = start_service(data, monkeypatch)
    try:
        assert_device_history_shown(service)
        assert main(["import-device-backup", str(tar), "--data-dir", str(data)]) == 2
        assert "homemeter is running on" in capsys.readouterr().err
    finally:
        service.stop()
