"""`homemeter run` as a real subprocess on free loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.loopback import PASSWORD, free_port

__all__ = ["PASSWORD", "free_port"]


@dataclass
class Service:
    """A running (or finished) homemeter process and how to talk to it."""

    data_dir: Path
    http_port: int = field(default_factory=free_port)
    modbus_port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "homemeter.cli", "--data-dir", str(self.data_dir), "run",
            "--bind", "127.0.0.1", "--http-port", str(self.http_port),
            "--modbus-port", str(self.modbus_port), "--no-mdns", *self.extra,
        ]  # fmt: skip

    def start(self, wait: bool = True) -> Service:
        env = {**os.environ, "HOMEMETER_ADMIN_PASSWORD": PASSWORD}
        self.proc = subprocess.Popen(
            self.command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until /health answers: a start takes seconds on a machine busy with other tests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"homemeter exited: {self.proc.communicate()}")
            try:
                if requests.get(f"{self.url}/api/v1/health", timeout=3).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening, or a slow start
                time.sleep(0.1)
        raise AssertionError("homemeter did not become healthy")

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", auth=HTTPDigestAuth("admin", PASSWORD), timeout=5)

    def finish(self, timeout: float = 15.0) -> tuple[int, str, str]:
        """Wait for exit; returns (code, stdout, stderr)."""
        assert self.proc is not None
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[type[Service]]:
    started: list[Service] = []

    class Tracked(Service):
        def start(self, wait: bool = True) -> Service:
            started.append(self)
            return super().start(wait)

    yield Tracked
    for svc in started:
        if svc.proc is not None and svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.communicate()
