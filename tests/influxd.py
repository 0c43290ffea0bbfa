"""A real InfluxDB 1.x (`/usr/bin/influxd`) of our own: temp directories, free loopback ports.

Never the system service: every test (and `bench/influxdb.py`) starts its own process with a config
file in its temp directory (meta, data and WAL there too), binds HTTP and the RPC listener to free
127.0.0.1 ports, turns off usage reporting and the `_internal` statistics database, and waits for
`/ping`. It can be stopped and started again on the same directory (an outage), and is killed in
`finally` by whoever started it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.loopback import free_port

INFLUXD = "/usr/bin/influxd"
SETUP_HINT = "influxd not installed: run scripts/system-deps.sh as root (Debian package influxdb)"

CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{dir}/meta"
  logging-enabled = false

[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  https-enabled = false

[ifql]
  enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


def available() -> bool:
    return shutil.which(INFLUXD) is not None


@dataclass
class Influxd:
    """One influxd process on its own directory; `start`/`stop` as often as needed."""

    directory: Path
    http_port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    # One client for every call: a new httpx client loads the CA bundle (tens of ms) each time.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30, verify=False))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 20.0) -> Influxd:
        """Start and wait until `/ping` answers 204."""
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "influxdb.conf"
        conf.write_text(CONFIG.format(dir=self.directory, http_port=self.http_port, rpc_port=self.rpc_port))
        log = (self.directory / "influxd.log").open("ab")
        self.proc = subprocess.Popen([INFLUXD, "-config", str(conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"influxd exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                if self.http.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"influxd did not answer /ping within {timeout} s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s) and wait: the port refuses connections afterwards."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL (a crash or a power cut of the server) and wait."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def log_tail(self) -> str:
        path = self.directory / "influxd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def query(self, q: str, db: str | None = None, epoch: str = "ns") -> list[dict[str, Any]]:
        """InfluxQL over HTTP; the `series` of the first statement (an error fails the test)."""
        params = {"q": q, "epoch": epoch, **({"db": db} if db else {})}
        r = self.http.post(f"{self.url}/query", data=params)
        r.raise_for_status()
        result = r.json()["results"][0]
        if "error" in result:
            raise AssertionError(f"InfluxQL error for {q!r}: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def write(self, body: str, db: str) -> httpx.Response:
        """A raw v1 write (precision ns)."""
        return self.http.post(f"{self.url}/write", params={"db": db}, content=body.encode())

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def rows(self, q: str, db: str) -> list[dict[str, Any]]:
        """Every row of every series as a dict (tags of GROUP BY * merged in)."""
        out = []
        for s in self.query(q, db):
            for values in s["values"]:
                out.append({**s.get("tags", {}), **dict(zip(s["columns"], values, strict=True))})
        return out

    def points_written(self) -> int:
        """Points this process accepted over HTTP since it started (`/debug/vars`, httpd)."""
        doc = self.http.get(f"{self.url}/debug/vars").json()
        return sum(
            int(v["values"].get("pointsWrittenOK", 0))
            for k, v in doc.items()
            if isinstance(v, dict) and v.get("name") == "httpd"
        )


@contextlib.contextmanager
def running_influxd(directory: Path) -> Iterator[Influxd]:
    """A started influxd, stopped on exit; a missing binary fails the test with the set-up hint."""
    if not available():
        pytest.fail(SETUP_HINT)
    server = Influxd(directory).start()
    try:
        yield server
    finally:
        server.stop()
