"""Faults: kill -9 at random moments, a full disk, a read-only data directory, a corrupt configuration.

kill -9: the simulator runs fast (`--speed`), a poller records the totals the API shows, and after
each kill the energy database is opened directly: it must pass its integrity check, hold totals
never below the previous cycle's, and miss at most the save interval (every total the API showed
`energySaveInterval` + `SAVE_SLACK` s before the kill is in the file). The next start must not
need the database's backup copy. InfluxDB writes to a real influxd meanwhile: every point left in
its queue file by a kill must be in influxd once the last start has drained it. The history archive
must have every channel at every hour from the first to the last, once: with libfaketime (Debian
`faketime`) each start's clock goes on from the kill plus up to 2 h, so hours missed while down are
filled at the next start.

Disk full and read-only need a mount of their own (tmpfs): root only, skipped otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from homemeter.meter.quantities import ENERGY_COLUMNS
from homemeter.store.archive import HOUR
from tests.influxd import Influxd, running_influxd
from tests.loopback import wait_until
from tests.reliability import records
from tests.reliability.clients import modbus_read
from tests.reliability.records import Point
from tests.reliability.report import Row, skipped
from tests.reliability.service import Homemeter, write_config

AREA = "faults"
ENERGY_KEYS = (
    "activeEnergyImported",
    "activeEnergyExported",
    "reactiveEnergyImported",
    "reactiveEnergyExported",
    "apparentEnergy",
)
INFLUX_DB, INFLUX_MEASUREMENT = "house", "energy"
SAVE_SLACK = 0.5  # s: the save's own duration (fsync) and the poller's lag behind the meter
ROUNDING = 0.05  # Wh: meter-values shows one decimal

Totals = dict[int, tuple[float, ...]]


def api_totals(svc: Homemeter, session: requests.Session) -> Totals:
    values = session.get(f"{svc.url}/api/v1/ade7953/meter-values", timeout=5).json()
    return {v["index"]: tuple(float(v["data"][k]) for k in ENERGY_KEYS) for v in values}


def db_totals(data_dir: Path) -> tuple[bool, Totals]:
    """(integrity check passed, totals) of energy.db as a restart would find it."""
    conn = sqlite3.connect(data_dir / "energy.db")
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(f"SELECT channel, {', '.join(ENERGY_COLUMNS)} FROM energy").fetchall()
    finally:
        conn.close()
    return ok, {int(r[0]): tuple(float(x) for x in r[1:]) for r in rows}


def covers(stored: Totals, shown: Totals, tolerance: float = ROUNDING) -> bool:
    """Every counter in `stored` is at least what `shown` displayed."""
    return all(
        all(s >= v - tolerance for s, v in zip(stored.get(ch, (0.0,) * 5), vals, strict=True))
        for ch, vals in shown.items()
    )


def kill9_cycles(
    workdir: Path, cycles: int, speed: float = 600.0, save_interval: float = 1.0, seed: int = 1
) -> list[Row]:
    """kill -9 at random moments; InfluxDB writes to a real influxd, the history archive follows.

    With libfaketime each start's clock goes on from where the killed one stopped, plus a random
    0-2 h (meter time) as if the machine had stayed off: the hours missed while down must be filled.
    """
    rng = random.Random(seed)
    data = workdir / "data"
    opened = never_lower = bounded = started_clean = 0
    previous: Totals = {}
    worst_loss = 0.0
    waiting: set[Point] = set()  # points in the InfluxDB queue file after a kill
    meter_end = time.time()  # an upper bound of the meter clock when the last process died
    faked = records.faketime_env(0) is not None
    with running_influxd(workdir / "influxd") as influx:
        influx.create_database(INFLUX_DB)
        write_config(data, energySaveInterval=save_interval, influxdb=_influx_config(influx))

        def start() -> tuple[Homemeter, float, float]:
            """A started service, when it was started, and its clock's offset."""
            began = time.time()
            offset = meter_end + rng.uniform(0, 2 * HOUR) - began if faked else 0.0
            env = records.faketime_env(offset) or {}
            return Homemeter(data, extra=("--speed", str(speed)), env=env).start(), began, int(offset)

        for _ in range(cycles):
            svc, began, offset = start()
            session = svc.session()
            seen: list[tuple[float, Totals]] = [(time.monotonic(), api_totals(svc, session))]
            never_lower += covers(seen[0][1], previous, tolerance=ROUNDING)  # restart did not lower them
            stop = threading.Event()

            poller = threading.Thread(target=_poll, args=(svc, session, stop, seen), daemon=True)
            poller.start()
            time.sleep(rng.uniform(0.3, 3.0))
            killed_at = time.monotonic()
            meter_end = began + offset + speed * (time.time() - began)
            svc.kill()
            stop.set()
            poller.join(5)
            session.close()
            ok, stored = db_totals(data)
            opened += ok
            covered = [t for t, shown in seen if covers(stored, shown)]
            loss = killed_at - max(covered, default=seen[0][0])
            worst_loss = max(worst_loss, loss)
            bounded += loss <= save_interval + SAVE_SLACK
            previous = stored
            started_clean += "recovered" not in svc.log
            waiting |= records.queued_points(data)
        final, _, _ = start()
        try:
            with final.session() as session:
                last_ok = covers(api_totals(final, session), previous)
            drained = _drained(final)
        finally:
            final.close()
        history = records.archive(data)
        in_influx = records.stored_points(influx, INFLUX_MEASUREMENT, INFLUX_DB)
    recoveries = cycles - started_clean
    lost = len(waiting - in_influx.keys())
    twice = sum(n > 1 for n in in_influx.values())
    clock = "each start's clock on from the kill + 0-2 h" if faked else "libfaketime missing: clock restarts"
    return [
        Row(
            AREA,
            "kill -9: energy.db passes its integrity check",
            cycles,
            opened,
            f"{cycles} kills at random moments (0.3-3 s after start), simulator at {speed:.0f}x",
        ),
        Row(
            AREA,
            "kill -9: totals never lower after restart",
            cycles + 1,
            never_lower + last_ok,
            f"{cycles + 1} restarts compared with the file left by the kill before",
        ),
        Row(
            AREA,
            f"kill -9: lost at most the save interval ({save_interval:g} s)",
            cycles,
            bounded,
            f"worst: {worst_loss:.2f} s of real time before the kill missing "
            f"(limit {save_interval:g} s + {SAVE_SLACK} s for the save itself)",
        ),
        Row(
            AREA,
            "kill -9: start without the backup copy",
            cycles,
            started_clean,
            f"{recoveries} starts recovered a damaged database",
        ),
        Row(
            AREA,
            "kill -9: history has no hole or duplicate hour",
            1,
            int(history.consistent),
            f"{history.figures}; {clock}",
        ),
        Row(
            AREA,
            "kill -9: InfluxDB queue loses nothing",
            len(waiting),
            len(waiting) - lost if drained and not twice else 0,
            f"{len(waiting)} points waiting in the queue after the kills, {lost} of them missing from "
            f"influxd; influxd holds {sum(in_influx.values())} points, {twice} twice; "
            f"queue empty after the last start: {drained}",
        ),
    ]


def _influx_config(influx: Influxd) -> dict[str, object]:
    return {
        "enabled": True, "server": "127.0.0.1", "port": influx.http_port, "version": 1,
        "database": INFLUX_DB, "measurement": INFLUX_MEASUREMENT, "frequency": 1,
    }  # fmt: skip


def _drained(svc: Homemeter) -> bool:
    """The InfluxDB backlog written; then the writer stopped, so influxd holds all it will get."""

    def empty() -> bool:
        details = svc.get("/api/v1/system/components").json()["influxdb"]["details"]
        return bool(details["backlogPoints"] == 0 and details["status"] == "Data sent successfully")

    try:
        wait_until(empty, timeout=30, what="the InfluxDB backlog written")
    except AssertionError:
        return False
    r = svc.request("PATCH", "/api/v1/influxdb/config", json={"enabled": False})
    return r.status_code == 200


def _poll(
    svc: Homemeter, session: requests.Session, stop: threading.Event, seen: list[tuple[float, Totals]]
) -> None:
    while not stop.is_set():
        with contextlib.suppress(requests.RequestException, ValueError):
            seen.append((time.monotonic(), api_totals(svc, session)))
        time.sleep(0.05)


# ----------------------------------------------------------------------------- mounts (root)
def can_mount() -> str | None:
    """None when tmpfs mounts work here, else why not."""
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs"
    return None


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte; the filler's path."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def _issues(svc: Homemeter) -> set[str]:
    """Codes of the active issues (cleared ones stay listed until acknowledged)."""
    issues = svc.get("/api/v1/system/issues").json()["issues"]
    return {i["code"] for i in issues if i["state"].startswith("active")}


def disk_full(workdir: Path) -> list[Row]:
    why = can_mount()
    if why:
        return [skipped(AREA, "disk full", why)]
    with tmpfs(workdir / "full", "4m") as data:
        write_config(data, energySaveInterval=1.0)
        svc = Homemeter(data, extra=("--speed", "60"), log_path=workdir / "full.log")
        try:
            svc.start()
            wait_until(lambda: db_totals(data)[1], timeout=10, what="a first save")
            kept = {name: _digest(data / name) for name in ("config.json", "credentials.json")}
            filler = _fill(data)
            noticed = _wait_issue(svc, present=True)
            before = svc.metrics()["homemeter_meter_snapshots_total"]
            time.sleep(2)
            sampling = svc.metrics()["homemeter_meter_snapshots_total"] - before
            served = svc.get("/api/v1/ade7953/meter-values").status_code
            with socket.create_connection(("127.0.0.1", svc.modbus_port), timeout=5) as s:
                modbus_ok = len(modbus_read(s, 1, 0, 8)) == 16
            change = svc.request("PATCH", "/api/v1/modbus/config", json={"idleTimeout": 30})
            unchanged = all(_digest(data / name) == digest for name, digest in kept.items())
            errors = [line for line in svc.log.splitlines() if "level=error" in line]
            filler.unlink()
            cleared = _wait_issue(svc, present=False)
            resumed = _saved_after(data, time.time())
            leftovers = [p.name for p in data.iterdir() if p.name.endswith(".tmp")]
            code = svc.close()
            ok, _ = db_totals(data)
        finally:
            svc.close()
    return [
        Row(
            AREA,
            "disk full: a clear error, once",
            2,
            int(noticed) + int(len(errors) == 1),
            f"energy_save_failing in /system/issues: {noticed}; {len(errors)} error line(s): "
            + (errors[0].split("msg=", 1)[-1][:90] if errors else "none"),
        ),
        Row(
            AREA,
            "disk full: sampling and APIs go on",
            3,
            int(sampling > 5) + int(served == 200) + int(modbus_ok),
            f"{sampling:.0f} snapshots in 2 s, meter-values {served}, "
            f"Modbus read {'ok' if modbus_ok else 'failed'}",
        ),
        Row(
            AREA,
            "disk full: a change is refused cleanly, no file truncated",
            3,
            int(change.status_code == 507) + int(unchanged) + int(not leftovers),
            f"config change answered {change.status_code} {change.text[:100]!r}; "
            f"config.json and credentials.json unchanged: {unchanged}; temporary files left: {leftovers}",
        ),
        Row(
            AREA,
            "disk full: writes resume when space returns",
            3,
            int(cleared) + int(resumed) + int(ok and code == 0),
            f"issue cleared: {cleared}; energy saved again: {resumed}; clean stop {code}, integrity ok: {ok}",
        ),
    ]


def _wait_issue(svc: Homemeter, present: bool, code: str = "energy_save_failing") -> bool:
    try:
        wait_until(lambda: (code in _issues(svc)) == present, timeout=10, what=f"{code} present={present}")
    except AssertionError:
        return False
    return True


def _saved_after(data: Path, moment: float) -> bool:
    def saved() -> bool:
        conn = sqlite3.connect(data / "energy.db")
        try:
            return bool(conn.execute("SELECT max(saved_at) FROM energy").fetchone()[0] >= moment)
        finally:
            conn.close()

    try:
        wait_until(saved, timeout=10, what="a save after space returned")
    except AssertionError:
        return False
    return True


# ----------------------------------------------------------------------------- bad starts
def _start_fails(data: Path, log: Path) -> tuple[int | None, list[str]]:
    """Start on `data`; (exit code, output lines) of a run that must end by itself."""
    svc = Homemeter(data, log_path=log)
    svc.start(wait=False)
    assert svc.proc is not None
    try:
        code = svc.proc.wait(20)
    except subprocess.TimeoutExpired:
        svc.close()
        return None, svc.log.splitlines()
    return code, [line for line in svc.log.splitlines() if line.strip()]


def read_only(workdir: Path) -> list[Row]:
    why = can_mount()
    if why:
        return [skipped(AREA, "read-only data directory", why)]
    with tmpfs(workdir / "ro", "4m") as data:
        write_config(data)
        first = Homemeter(data, log_path=workdir / "ro-first.log").start()
        first.close()
        before = {p.name: _digest(p) for p in data.iterdir() if p.is_file()}
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        code, lines = _start_fails(data, workdir / "ro.log")
        after = {p.name: _digest(p) for p in data.iterdir() if p.is_file()}
    return [
        Row(
            AREA,
            "read-only data directory: one clear error at start",
            1,
            int(code == 2 and len(lines) == 1 and "read-only" in lines[0].lower() and before == after),
            f"exit {code}; {len(lines)} line(s): {lines[0][:120] if lines else ''}",
        )
    ]


CORRUPTIONS = {
    "not JSON": b'{\n  "version": 1,\n  "channels": [',
    "empty file": b"",
    "a port out of range": None,  # filled from a valid file
    "binary garbage": bytes(range(256)),
}


def corrupt_config(workdir: Path) -> list[Row]:
    held, notes = 0, []
    for n, (what, content) in enumerate(CORRUPTIONS.items()):
        data = workdir / f"corrupt-{n}"
        write_config(data)
        path = data / "config.json"
        if content is None:
            content = path.read_bytes().replace(b'"port": 502', b'"port": 70000')
        path.write_bytes(content)
        code, lines = _start_fails(data, workdir / f"corrupt-{n}.log")
        ok = code == 2 and len(lines) == 1 and "config.json" in lines[0] and path.read_bytes() == content
        held += ok
        notes.append(f"{what}: exit {code}, {len(lines)} line(s)")
    return [
        Row(
            AREA,
            "corrupt config.json: one clear error at start, file kept",
            len(CORRUPTIONS),
            held,
            "; ".join(notes),
        )
    ]
