"""The whole service (`app.serve`) in a thread on free loopback ports, with a fresh data directory.

Tests talk to it over real HTTP with Digest auth (requests) and real Modbus (pymodbus); `runtime`
is the handle `build_runtime` returned (meter, components, services), for assertions that compare
against the meter.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth

from homemeter import app as app_module
from homemeter.api.services import Services
from homemeter.app import COMPONENTS, Runtime, build_runtime, serve
from homemeter.component import ComponentFactory
from homemeter.config.settings import Settings
from homemeter.logs.ring import RingHandler
from tests.loopback import PASSWORD, free_port, wait_until

__all__ = ["PASSWORD", "free_port", "wait_until"]


@dataclass
class RunningService:
    """A service started by `serve()` in a background thread, and a Digest session for it."""

    data_dir: Path
    http_port: int
    modbus_port: int
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    runtime: Runtime
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def services(self) -> Services:
        return self.runtime.services

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("auth", HTTPDigestAuth("admin", PASSWORD))
        return self.session.request(method, f"{self.url}{path}", **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(timeout=15)
        self.session.close()


def start_service(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    speed: float = 60.0,
    channels: int = 17,
    components: Sequence[ComponentFactory] = COMPONENTS,
    **options: Any,
) -> RunningService:
    """Start `serve()` and wait until /api/v1/health answers; `options` are more `Settings` fields."""
    monkeypatch.setenv(app_module.PASSWORD_ENV, PASSWORD)
    settings = Settings(
        data_dir=data_dir,
        bind="127.0.0.1",
        http_port=options.pop("http_port", None) or free_port(),
        modbus_port=free_port(),
        mdns=False,
        speed=speed,
        channels=channels,
        **options,
    )
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        holder["loop"] = loop
        try:
            runtime = build_runtime(settings, RingHandler(), asyncio.Event(), components)
            holder["runtime"] = runtime
            ready.set()
            loop.run_until_complete(serve(runtime))
        except BaseException as err:  # surfaced by the health wait below
            holder["error"] = err
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="homemeter-under-test", daemon=True)
    thread.start()
    ready.wait(30)  # generous for a busy machine: returns as soon as the runtime is built
    if "error" in holder:
        raise AssertionError(f"service failed to start: {holder['error']!r}")
    runtime = holder["runtime"]
    running = RunningService(
        data_dir, settings.http_port, settings.modbus_port or 0, thread, holder["loop"], runtime.stop, runtime
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "error" in holder:
            raise AssertionError(f"service failed to start: {holder['error']!r}")
        try:
            if requests.get(f"{running.url}/api/v1/health", timeout=2).ok:
                return running
        except requests.RequestException:  # not listening yet, or a slow first answer
            time.sleep(0.05)
    running.stop()
    raise AssertionError("service did not become healthy")


def module_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One service for a module's tests that must each leave it unchanged (refusals, rejections)."""
    mp = pytest.MonkeyPatch()
    running = start_service(tmp_path_factory.mktemp("shared") / "data", mp)
    try:
        yield running
    finally:
        running.stop()
        mp.undo()


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningService]:
    """A fresh service (simulator at 60x) per test."""
    running = start_service(tmp_path / "data", monkeypatch)
    try:
        yield running
    finally:
        running.stop()
