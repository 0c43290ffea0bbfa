"""Energy persistence: round trip, damaged files recovered from the last good copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from homemeter.errors import StoreCorrupted
from homemeter.meter.snapshot import EnergyTotals
from homemeter.store.energy_store import BACKUP_EVERY, EnergyStore

TOTALS = {
    0: EnergyTotals(1234.5, 67.8, 9.1, 2.3, 1300.0),
    5: EnergyTotals(10.0, 0.0, 1.0, 0.0, 11.0),
}


def saved_store(tmp_path: Path, saves: int = BACKUP_EVERY) -> EnergyStore:
    store = EnergyStore(tmp_path)
    assert store.open() == {}
    for _ in range(saves):
        store.save(TOTALS)
    store.close()
    return store


def test_totals_survive_reopen(tmp_path: Path) -> None:
    saved_store(tmp_path, saves=1)
    assert EnergyStore(tmp_path).open() == TOTALS


def test_garbage_database_is_recovered_from_last_good_copy(tmp_path: Path) -> None:
    store = saved_store(tmp_path)
    store.path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    assert EnergyStore(tmp_path).open() == TOTALS
    assert list(tmp_path.glob("energy.db.corrupt-*")), "the damaged file is kept for inspection"


def test_truncated_database_is_recovered(tmp_path: Path) -> None:
    store = saved_store(tmp_path)
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 3])
    assert EnergyStore(tmp_path).open() == TOTALS


def test_damaged_database_without_good_copy_is_a_clear_error(tmp_path: Path) -> None:
    store = saved_store(tmp_path)
    store.path.write_bytes(b"\0" * 4096)
    store.backup_path.write_bytes(b"also broken")
    with pytest.raises(StoreCorrupted, match="damaged"):
        EnergyStore(tmp_path).open()


async def test_400_concurrent_saves_from_threads_and_the_loop_never_fail(tmp_path: Path) -> None:
    """Periodic saves (writer thread) and signalled ones (other threads) overlap: 0 errors, no torn save."""
    import asyncio
    import concurrent.futures

    store = EnergyStore(tmp_path)
    store.open()

    def totals(k: int) -> dict[int, EnergyTotals]:
        return {ch: EnergyTotals(k, k + 0.5, k + 0.25, k + 0.125, k + 1.0) for ch in range(17)}

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        threaded = [pool.submit(store.save, totals(k)) for k in range(200)]
        looped = await asyncio.gather(*(store.save_totals(totals(k)) for k in range(200, 400)))
        errors = [f.exception() for f in threaded if f.exception() is not None]
    assert errors == [] and len(looped) == 200
    stored = await store.call(_read_all)
    # Every channel holds the same save, whole: no save was interleaved with another.
    assert len({row[1:] for row in stored}) == 1 and len(stored) == 17
    await store.save_totals(totals(1000))  # the last save wins
    store.close()
    assert EnergyStore(tmp_path).open() == totals(1000)


def _read_all(conn: object) -> list[tuple[float, ...]]:
    import sqlite3

    assert isinstance(conn, sqlite3.Connection)
    return [tuple(r) for r in conn.execute("SELECT channel, active_imported, active_exported FROM energy")]
