"""History over real HTTP: the device's energy files and the query API, on a simulated 40-day history.

The data directory is filled by `homemeter simulate`'s code path before the service starts, so the
files, the query API and the live counters must all tell the same story.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from homemeter.config.channel import ChannelConfig
from homemeter.meter.sources.simulator import default_channel_configs
from homemeter.store.backfill import Simulation, simulate_into
from homemeter.store.energy_files import HEADER, periods
from tests.integration.conftest import RunningService, start_service, wait_until
from tests.unit.test_energy_files import reference

API = "/api/v1"
DAYS = 40
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:00:00\.000Z")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    data_dir = tmp_path_factory.mktemp("history") / "data"
    data_dir.mkdir()
    channels: list[ChannelConfig] = default_channel_configs(17)
    simulate_into(data_dir, Simulation(channels, seed=0, days=DAYS, until=time.time()))
    mp = pytest.MonkeyPatch()
    running = start_service(data_dir, mp, speed=1.0)
    try:
        yield running
    finally:
        running.stop()
        mp.undo()


def device_files(svc: RunningService) -> dict[str, bytes]:
    """Every file the dashboard would fetch, listed folder by folder as it does."""
    out = {}
    for folder in ("daily", "monthly", "yearly"):
        listing = svc.get(f"{API}/list-files?folder=energy/{folder}").json()
        for name, size in listing.items():
            response = svc.get(f"{API}/files/energy%2F{folder}%2F{name}")
            assert response.status_code == 200 and len(response.content) == size
            out[f"{folder}/{name}"] = response.content
    return out


def test_the_device_files_parse_with_its_columns_and_gzip(filled: RunningService) -> None:
    files = device_files(filled)
    today = datetime.now(UTC).date()
    assert f"daily/{today}.csv" in files
    rows: dict[tuple[str, int], tuple[int, int]] = {}
    for name, content in files.items():
        text = (gzip.decompress(content) if name.endswith(".gz") else content).decode()
        assert text.splitlines()[0] == HEADER
        for r in csv.DictReader(io.StringIO(text)):
            assert TIMESTAMP.fullmatch(r["timestamp"]), r
            key = (r["timestamp"], int(r["channel"]))
            assert key not in rows, f"{key} in two files"
            rows[key] = (int(r["active_imported"]), int(r["active_exported"]))
    hours = sorted(ts for ts, channel in rows if channel == 0)
    assert len(hours) >= DAYS * 24 - 6, "every hour of the simulated history (past the first 100 Wh)"
    grid = [rows[(ts, 0)] for ts in hours]
    assert grid == sorted(grid), "cumulative counters never go down"
    # The last archived row is at most an hour behind what the meter shows now.
    live = filled.get(f"{API}/ade7953/meter-values?index=0").json()["activeEnergyImported"]
    assert 0 <= live - grid[-1][0] < 10_000


def test_compressed_files_hold_what_one_plain_query_of_their_period_gives(filled: RunningService) -> None:
    files = device_files(filled)
    now = time.time()
    first = datetime.fromtimestamp(now - DAYS * 86_400 - 3600, UTC).year
    compressed = {name: period for name, period in periods(now, first).items() if name.endswith(".gz")}
    assert compressed and set(compressed) <= set(files)
    for name, period in compressed.items():
        assert gzip.decompress(files[name]) == reference(filled.data_dir / "energy.db", *period), name


def test_generated_files_revalidate_with_their_etag(filled: RunningService) -> None:
    listing = filled.get(f"{API}/list-files?folder=energy/yearly").json()
    name = next(iter(listing))
    first = filled.get(f"{API}/files/energy%2Fyearly%2F{name}")
    assert first.headers["content-type"] == "application/gzip" and "content-encoding" not in first.headers
    again = filled.get(
        f"{API}/files/energy%2Fyearly%2F{name}", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert filled.get(f"{API}/files/energy%2Fdaily%2F1999-01-01.csv").status_code == 404
    whole = filled.get(f"{API}/list-files").json()
    assert f"energy/yearly/{name}" in whole


def energy(svc: RunningService, **params: Any) -> dict[str, Any]:
    response = svc.get(f"{API}/history/energy", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_query_totals_equal_the_live_counters(filled: RunningService) -> None:
    body = energy(filled, resolution="month", tz="Europe/Rome", **{"from": "2000-01-01", "to": "2100-01-01"})
    assert len(body["buckets"]) == 1200
    channels = filled.runtime.meter.latest.channels
    assert len(body["series"]) == len(channels) == 17
    for series in body["series"]:
        live = channels[int(series["key"])]
        total = sum(v for v in series["imported"] if v is not None)
        # The simulated history starts at zero, so its sum is the counter (+ what the last second added).
        assert total == pytest.approx(live.active_energy_imported, abs=5.0), series["label"]


def test_query_per_role_and_group_and_csv(filled: RunningService) -> None:
    by_channel = energy(filled, resolution="month", by="channel")
    by_role = energy(filled, resolution="month", by="role")
    by_group = energy(filled, resolution="month", by="group")
    assert {s["key"] for s in by_role["series"]} >= {"grid", "pv", "battery", "load"}
    kitchen = next(s for s in by_group["series"] if s["key"] == "Kitchen")
    assert kitchen["channels"] == [3, 4, 8]

    def month_total(body: dict[str, Any]) -> float:
        return sum(v or 0 for s in body["series"] for v in s["imported"])

    assert month_total(by_role) == pytest.approx(month_total(by_channel), rel=1e-6, abs=1.0)
    assert month_total(by_group) == pytest.approx(month_total(by_channel), rel=1e-6, abs=1.0)
    download = filled.get(f"{API}/history/energy.csv", params={"resolution": "day", "by": "role"})
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert set(rows[0]) == {"start", "end", "series", "label", "imported_wh", "exported_wh"}
    assert {r["series"] for r in rows} >= {"grid", "pv"}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"tz": "Mars/Olympus"}, "tz"), ({"resolution": "week"}, "resolution"), ({"by": "phase"}, "by"),
     ({"from": "yesterday"}, "from"), ({"from": "2026-01-02", "to": "2026-01-01"}, "to"),
     ({"resolution": "hour", "from": "2000", "to": "2026"}, "buckets")],
)  # fmt: skip
def test_bad_queries_get_a_400_naming_the_parameter(
    filled: RunningService, params: dict[str, str], field: str
) -> None:
    response = filled.get(f"{API}/history/energy", params=params)
    assert response.status_code == 400 and field in response.json()["error"]


def read_events(data_dir: Path) -> list[tuple[int, str, str, str]]:
    conn = sqlite3.connect(f"file:{data_dir / 'energy.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT channel, kind, role_before, role_after FROM history_event").fetchall()
    finally:
        conn.close()


def test_reset_and_role_change_keep_history_and_sums(filled: RunningService) -> None:
    whole = {"from": "2000-01-01", "to": "2100-01-01", "resolution": "year"}

    def total(body: dict[str, Any], key: str) -> float:
        return sum(v or 0 for s in body["series"] if s["key"] == key for v in s["imported"])

    before = energy(filled, **whole)
    assert filled.request("POST", f"{API}/ade7953/energy/reset?index=5").ok
    wait_until(lambda: (5, "reset", "load", "load") in read_events(filled.data_dir), what="reset event")
    after = energy(filled, **whole)
    assert total(after, "5") == pytest.approx(total(before, "5"), abs=5.0), "the reset lost no history"

    roles_before = energy(filled, by="role", **whole)
    channel = filled.get(f"{API}/ade7953/channel?index=11").json()
    changed = channel | {"role": "inverter", "groupLabel": "Inverter"}
    assert filled.request("PUT", f"{API}/ade7953/channel", json=changed).ok
    wait_until(lambda: (11, "role", "load", "inverter") in read_events(filled.data_dir), what="role event")
    roles_after = energy(filled, by="role", **whole)
    # The office's past stays load energy; only what it measures from now on counts as inverter.
    assert total(roles_after, "load") == pytest.approx(total(roles_before, "load"), abs=5.0)
    assert total(roles_after, "inverter") < 5.0
    body = energy(filled, **whole)
    assert any(e["channel"] == 11 and e["kind"] == "role" for e in body["events"])


def test_history_config_round_trip(filled: RunningService) -> None:
    assert filled.get(f"{API}/history/config").json() == {"retentionYears": 10}
    bad = filled.request("PUT", f"{API}/history/config", json={"retentionYears": 0})
    assert bad.status_code == 400 and "retentionYears" in bad.json()["error"]
    assert filled.request("PUT", f"{API}/history/config", json={"retentionYears": 20}).ok
    status = filled.services.status("history")
    assert status is not None and status.details["retentionYears"] == 20
    assert filled.request("PUT", f"{API}/history/config", json={"retentionYears": 10}).ok


def test_a_clean_stop_leaves_the_archive_equal_to_the_saved_totals(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    mp = pytest.MonkeyPatch()
    running = start_service(data_dir, mp, speed=3600.0)  # an hour per second
    try:

        def hours_written() -> bool:
            status = running.services.status("history")
            return status is not None and status.counters.get("hoursWritten", 0) >= 2

        wait_until(hours_written, timeout=30, what="two closed hours")
    finally:
        running.stop()
        mp.undo()
    conn = sqlite3.connect(data_dir / "energy.db")
    last = conn.execute("SELECT max(hour) FROM history_hour").fetchone()[0]
    archived = conn.execute(
        "SELECT channel, active_imported, active_exported, apparent, status FROM history_hour WHERE hour = ?",
        (last,),
    ).fetchall()
    saved = conn.execute("SELECT channel, active_imported, active_exported, apparent FROM energy").fetchall()
    statuses = conn.execute("SELECT DISTINCT status FROM history_hour WHERE hour < ?", (last,)).fetchall()
    conn.close()
    assert sorted(r[:4] for r in archived) == sorted(saved) and {r[4] for r in archived} == {1}
    assert {0} <= {s for (s,) in statuses}
