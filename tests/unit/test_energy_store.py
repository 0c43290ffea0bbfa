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
