"""Simulated backfill: the fast path agrees with the meter's own sampling, and `simulate` fills a data
directory whose archive and totals agree with each other."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from homemeter.cli import main
from homemeter.errors import StoreError
from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.sources.simulator import HouseholdSimulator
from homemeter.store.archive import HOUR
from homemeter.store.backfill import Backfill, Simulation, simulate_into

START = 1_781_085_600  # 2026-06-10T10:00:00Z: PV, battery and appliances all at work
CHANNELS = HouseholdSimulator().factory_channels(17)


def test_backfill_matches_the_meter_sampling_every_window() -> None:
    meter = Meter(HouseholdSimulator(), CHANNELS, {}, clock=MeterClock(1.0, start=START))
    meter.simulate(4 * HOUR)
    backfill = Backfill(HouseholdSimulator(), CHANNELS, START)
    for _ in backfill.run(meter.latest.taken_at):
        pass
    for c, fast in zip(meter.latest.channels, backfill.counters, strict=True):
        for sampled, integrated in ((c.active_energy_imported, fast.active_imported),
                                    (c.active_energy_exported, fast.active_exported),
                                    (c.apparent_energy, fast.apparent)):  # fmt: skip
            # Per-window noise and the multiplexer's zero-order hold differ; energy must not.
            assert integrated == pytest.approx(sampled, rel=0.02, abs=5.0), c.label


def test_simulate_fills_an_archive_consistent_with_the_totals(tmp_path: Path) -> None:
    days = []
    until = START + 2 * 86_400 + 1234
    totals = simulate_into(tmp_path, Simulation(CHANNELS, 0, 2.0, until), days.append)
    assert days[-1] == 2.0 and days == sorted(days)
    conn = sqlite3.connect(tmp_path / "energy.db")
    hours = [h for (h,) in conn.execute("SELECT DISTINCT hour FROM history_hour ORDER BY hour")]
    saved = dict(conn.execute("SELECT channel, active_imported FROM energy").fetchall())
    last = dict(
        conn.execute("SELECT channel, active_imported FROM history_hour WHERE hour = ?", (hours[-1],))
    )
    first = conn.execute("SELECT max(active_imported), min(status) FROM history_hour WHERE hour = ?",
                         (hours[0],)).fetchone()  # fmt: skip
    conn.close()
    assert hours == list(range(START, START + 2 * 86_400 + 2 * HOUR, HOUR))
    assert first == (0.0, 0)  # the history starts at zero
    assert saved == last == {i: t.active_energy_imported for i, t in totals.items()}  # provisional = totals
    with pytest.raises(StoreError, match="already has energy history"):
        simulate_into(tmp_path, Simulation(CHANNELS, 0, 1.0, until))
    simulate_into(tmp_path, Simulation(CHANNELS, 0, 1.0, until, replace=True))


def test_simulate_command_explains_itself_and_refuses_bad_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "--days" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "simulate", "--days", "-3"])
    assert "between 0 and 36600 days" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "simulate", "--days", "1", "--until", "2999-01-01"]) == 2
    assert "in the past" in capsys.readouterr().err
    assert (
        main(["--data-dir", str(tmp_path), "simulate", "--days", "0.5", "--until", "2026-06-10T12:00:00Z"])
        == 0
    )
    assert "0.5 days of history" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "simulate", "--days", "1"]) == 2
    assert "--replace" in capsys.readouterr().err
