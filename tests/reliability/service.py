"""`homemeter run` as a subprocess whose output goes to a file (a long run never blocks on a pipe).

The soak scripts run outside pytest, so this is a plain context manager; the tests use it the same
way. Built on the e2e `Service` (command line, health wait, Digest GET).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
from requests.auth import HTTPDigestAuth

from homemeter.config.app import AppConfig
from homemeter.meter.sources.simulator import HouseholdSimulator
from homemeter.store.config import ConfigStore
from tests.e2e.conftest import Service
from tests.loopback import PASSWORD


@dataclass
class Homemeter(Service):
    """One `homemeter run`; `log` collects its stdout and stderr."""

    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of ours (e.g. libfaketime's)

    def start(self, wait: bool = True) -> Homemeter:
        env = {**os.environ, "HOMEMETER_ADMIN_PASSWORD": PASSWORD, **self.env}
        self.log_path = self.log_path or self.data_dir.parent / f"{self.data_dir.name}.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(), env=env, stdout=out, stderr=subprocess.STDOUT, text=True
            )
        if wait:
            self.wait_healthy()
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    @property
    def process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def session(self, source: str | None = None) -> requests.Session:
        """A Digest session, optionally from another loopback address (e.g. 127.0.0.2)."""
        s = requests.Session()
        s.auth = HTTPDigestAuth("admin", PASSWORD)
        if source is not None:
            adapter = SourceAddressAdapter(source)
            s.mount("http://", adapter)
        return s

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("auth", HTTPDigestAuth("admin", PASSWORD))
        return requests.request(method, f"{self.url}{path}", **kwargs)

    def metrics(self) -> dict[str, float]:
        """The unlabelled samples of /metrics (the meter's counters), by name."""
        text = self.get("/metrics").text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, _, value = line.partition(" ")
                out[name] = float(value)
        return out

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Connect from a chosen local address: a second client machine, on loopback."""

    def __init__(self, address: str) -> None:
        self._source = (address, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def write_config(data_dir: Path, channels: int = 17, **changes: Any) -> None:
    """Write config.json before the first start (as the first start would), with `changes`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    factory = HouseholdSimulator(seed=0, channel_count=channels).factory_channels(channels)
    doc = AppConfig(channels=factory).model_dump(mode="json")
    doc.update(changes)
    ConfigStore(data_dir).save(AppConfig.model_validate(doc))


@contextmanager
def running(data_dir: Path, *extra: str) -> Iterator[Homemeter]:
    svc = Homemeter(data_dir, extra=tuple(extra))
    try:
        yield svc.start()
    finally:
        svc.close()
