"""The web UI in a real browser: Debian's Chromium driven by Playwright (no browser download).

One service (the simulator at 60x, on free loopback ports) and one browser per module; each test gets
its own browser context with the service's Digest credentials, and every request, console message
and page error of that context is recorded, so a test can assert that nothing went wrong and that
nothing left 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, sync_playwright

from homemeter.api.web import STATIC_DIR
from tests.integration.conftest import RunningService, start_service
from tests.loopback import PASSWORD

CHROMIUM = os.environ.get("HOMEMETER_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
SCREENSHOTS = OUTPUT / "screenshots"
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
Scheme = Literal["light", "dark"]


def _missing(what: str) -> None:
    # In CI a missing part is a failure (make test installs it); on a developer's machine a skip that
    # says how to get it.
    if os.environ.get("CI"):
        pytest.fail(what)
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        _missing("chromium is not installed: run scripts/system-deps.sh as root (Debian package chromium)")
    if not (STATIC_DIR / "index.html").exists():
        _missing("the web UI is not built: run make install (needs nodejs and npm)")
    with sync_playwright() as pw:
        # /dev/shm is small in some containers; Chromium then crashes on tall full-page screenshots.
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=["--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def web_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    data = tmp_path_factory.mktemp("web") / "data"
    # Two days of the seeded household's history, so the charts have something real to draw.
    subprocess.run(
        [sys.executable, "-m", "homemeter.cli", "--data-dir", str(data), "simulate", "--days", "2"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        running = start_service(data, monkeypatch)
        try:
            yield running
        finally:
            running.stop()


@dataclass
class Session:
    """A browser context on the service, with everything it did recorded."""

    context: BrowserContext
    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def check_clean(self) -> None:
        assert not self.errors, self.errors
        assert not self.foreign, f"requests that left 127.0.0.1: {self.foreign}"


def open_session(
    browser: Browser, service: RunningService, viewport: dict[str, int], scheme: Scheme = "light"
) -> Session:
    context = browser.new_context(
        http_credentials={"username": "admin", "password": PASSWORD},
        viewport=viewport,
        accept_downloads=True,
        color_scheme=scheme,
    )
    page = context.new_page()
    session = Session(context, page, service.url)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            session.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def request(req: Request) -> None:
        host = urlsplit(req.url).hostname
        if req.url.startswith(("http:", "https:", "ws:", "wss:")) and host != "127.0.0.1":
            session.foreign.append(req.url)

    page.on("console", console)
    page.on("pageerror", lambda err: session.errors.append(f"page error: {err}"))
    context.on("request", request)
    return session


@pytest.fixture
def desktop(browser: Browser, web_service: RunningService) -> Iterator[Session]:
    session = open_session(browser, web_service, DESKTOP)
    try:
        yield session
    finally:
        session.context.close()


@pytest.fixture
def phone(browser: Browser, web_service: RunningService) -> Iterator[Session]:
    session = open_session(browser, web_service, PHONE, "dark")  # the phone screenshots show dark mode
    try:
        yield session
    finally:
        session.context.close()
