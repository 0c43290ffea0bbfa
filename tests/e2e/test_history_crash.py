"""`kill -9` while homemeter writes the history archive: no closed hour is lost or half-written.

Two writes are caught in the act: the large fill of hours missed while the service was down (60
days of 17 channels in one transaction, written at start) and the hour rows written as hours close
under `--speed`. The test reads the database as another process would, before and after each kill.
"""

from __future__ import annotations

import functools
import signal
import sqlite3
import time
from pathlib import Path

from homemeter.meter.sources.simulator import default_channel_configs
from homemeter.store.archive import HOUR, RowStatus
from homemeter.store.backfill import Simulation, simulate_into
from tests.e2e.conftest import Service
from tests.loopback import wait_until

Row = tuple[int, int, float, int]  # hour, channel, active imported, status


def archived(data_dir: Path) -> dict[tuple[int, int], tuple[float, int]]:
    conn = sqlite3.connect(f"file:{data_dir / 'energy.db'}?mode=ro", uri=True, timeout=5)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT hour, channel, active_imported, status FROM history_hour").fetchall()
    finally:
        conn.close()
    return {(h, c): (wh, status) for h, c, wh, status in rows}


def assert_whole(
    before: dict[tuple[int, int], tuple[float, int]], after: dict[tuple[int, int], tuple[float, int]]
) -> None:
    """Every closed hour seen before is still there unchanged, and the hours have no hole."""
    closed = {k: v for k, v in before.items() if v[1] != RowStatus.PROVISIONAL}
    assert {k: after.get(k) for k in closed} == closed
    hours = sorted({h for h, _ in after})
    assert hours == list(range(hours[0], hours[-1] + HOUR, HOUR))
    assert all(len([1 for h, _ in after if h == hour]) == 17 for hour in hours[-3:]), "all channels or none"


def _archived_if_any(data_dir: Path) -> dict[tuple[int, int], tuple[float, int]]:
    """The archive once the service has created it, else nothing yet."""
    try:
        return archived(data_dir)
    except sqlite3.OperationalError:  # no database or no table yet
        return {}


def _grew(path: Path, size: int) -> bool:
    return path.exists() and path.stat().st_size > size


def test_kill_during_the_fill_of_missed_hours(service_factory: type[Service], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    down_since = time.time() - 60 * 86_400
    simulate_into(data_dir, Simulation(default_channel_configs(17), 0, 1.0, down_since))
    before = archived(data_dir)
    wal = Path(f"{data_dir / 'energy.db'}-wal")
    interrupted = 0
    for _ in range(4):
        size = wal.stat().st_size if wal.exists() else 0
        svc = service_factory(data_dir).start(wait=False)
        assert svc.proc is not None
        # The fill is the first write of a start: kill as soon as its pages reach the log.
        wait_until(functools.partial(_grew, wal, size), timeout=30, interval=0.002, what="a write")
        svc.proc.send_signal(signal.SIGKILL)
        svc.finish()
        after = archived(data_dir)
        assert_whole(before, after)  # the fill is in the database whole, or not at all
        interrupted += max(after)[0] == max(before)[0]
        before = after
    svc = service_factory(data_dir).start()
    wait_until(
        lambda: max(archived(data_dir))[0] >= time.time() // HOUR * HOUR - HOUR, timeout=30, what="the fill"
    )
    code, _, _ = svc.stop()
    assert code == 0
    final = archived(data_dir)
    assert_whole(before, final)
    missed = [
        final[(h, 0)]
        for h in range(int(down_since // HOUR * HOUR) + 2 * HOUR, int(time.time() // HOUR * HOUR), HOUR)
    ]
    saved = before[max(k for k in before if k[1] == 0)][0]
    assert {m[1] for m in missed} == {RowStatus.MISSED} and {m[0] for m in missed} == {saved}
    assert interrupted, "no kill landed before the fill committed: the test proved nothing"


def test_kill_while_hours_close(service_factory: type[Service], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # An hour per second; nothing here needs HTTP, so no health wait on a busy machine.
    svc = service_factory(data_dir, extra=("--speed", "3600")).start(wait=False)
    assert svc.proc is not None

    def four_hours() -> dict[tuple[int, int], tuple[float, int]]:
        rows = _archived_if_any(data_dir)
        return rows if len({h for h, _ in rows}) >= 4 else {}

    seen = wait_until(four_hours, timeout=60, interval=0.01, what="hours closing")
    svc.proc.send_signal(signal.SIGKILL)  # right after a write: likely inside the next one
    svc.finish()
    after = archived(data_dir)
    assert_whole(seen, after)
    grid = [after[k][0] for k in sorted(k for k in after if k[1] == 0)]
    assert grid == sorted(grid), "the counter only grows from hour to hour"
