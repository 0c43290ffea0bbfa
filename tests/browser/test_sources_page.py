"""The Sources page in Chromium: a homemeter reading two meters, one that answers and one that does not.

The meter that answers is the browser tests' own service (a homemeter on the simulator, playing an
EnergyMe-Home device); the one that does not is a Modbus address where nothing listens. The page
says which is which, why the second is unreachable, when each was last read, and which homemeter
channel shows which meter channel; a label the device sends is shown as text, never run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from pydantic import SecretStr

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.sources import ChannelSource, MeterSource, SourceKind, SourcesConfig
from homemeter.store.config import ConfigStore
from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, Session, open_session
from tests.integration.conftest import RunningService, start_service
from tests.loopback import PASSWORD, free_port, wait_until

HOSTILE = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def reading_two(
    tmp_path_factory: pytest.TempPathFactory, web_service: RunningService
) -> Iterator[RunningService]:
    home = tmp_path_factory.mktemp("sources") / "home"
    home.mkdir()
    dead = f"modbus://127.0.0.1:{free_port()}/1"
    meters = (
        MeterSource(name="grid", kind=SourceKind.MODBUS, url=dead, model="sdm630", timeout=0.5),
        MeterSource(
            name="house", kind=SourceKind.ENERGYME, url=web_service.url, password=SecretStr(PASSWORD)
        ),
    )
    mapping = (
        *(ChannelSource(channel=k, source="grid", sourceChannel=k) for k in range(3)),
        ChannelSource(channel=3, source="house", sourceChannel=3),
        ChannelSource(channel=4, source="house", sourceChannel=5),
    )
    channels = tuple(ChannelConfig.default(i).model_copy(update={"active": i < 5}) for i in range(5))
    sources = SourcesConfig(meters=meters, channels=mapping)
    ConfigStore(home).save(AppConfig(channels=channels, sources=sources))
    with pytest.MonkeyPatch.context() as monkeypatch:
        running = start_service(home, monkeypatch, speed=1.0, channels=5, source="config")
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture
def hostile_device_label(web_service: RunningService) -> Iterator[None]:
    before = web_service.get("/api/v1/ade7953/channel?index=3").json()
    response = web_service.request("PATCH", "/api/v1/ade7953/channel", json={"index": 3, "label": HOSTILE})
    assert response.status_code == 200, response.text
    yield
    web_service.request("PATCH", "/api/v1/ade7953/channel", json={"index": 3, "label": before["label"]})


def test_the_sources_page_shows_states_reasons_and_the_channel_map(
    browser: Browser, reading_two: RunningService, web_service: RunningService, hostile_device_label: None
) -> None:
    # The device's label reaches homemeter's channel 3 (as text to show).
    wait_until(
        lambda: reading_two.get("/api/v1/ade7953/channel?index=3").json()["label"] == HOSTILE,
        10,
        what="the device's label copied",
    )
    grid_url = reading_two.get("/api/v1/sources/config").json()["meters"][0]["url"]
    port = grid_url.split(":")[2].split("/")[0]
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        session: Session = open_session(browser, reading_two, viewport)
        try:
            page = session.goto("/sources")
            meters = page.locator("#meter-list")
            # The unreachable meter and why, as the status API says it.
            reason = meters.locator('[data-reason="grid"]')
            expect(reason).to_contain_text(f"cannot connect to 127.0.0.1:{port}", timeout=10_000)
            grid_row = meters.locator("tr", has=page.locator("strong", has_text="grid"))
            expect(grid_row.locator('[data-state="unreachable"]')).to_have_text("unreachable")
            expect(grid_row).to_contain_text("never")  # never read
            # The device answers: connected, read moments ago.
            house_row = meters.locator("tr", has=page.locator("strong", has_text="house"))
            expect(house_row.locator('[data-state="running"]')).to_have_text("connected", timeout=10_000)
            expect(house_row.locator("time")).to_have_text(re.compile(r"just now|\d+ s ago"))
            expect(page.locator("#sources-state")).to_have_text("a meter does not answer")

            # The channel map: homemeter channel, meter, meter channel, that meter's state, the label.
            rows = page.locator("#channel-map-body tbody tr")
            expect(rows).to_have_count(5)
            cells = [row.locator("td").all_inner_texts() for row in rows.all()]
            assert [c[0] for c in cells] == ["0", "1", "2", "3", "4"]
            assert [(c[1], c[2], c[3]) for c in cells] == [
                ("grid", "0", "unreachable"), ("grid", "1", "unreachable"), ("grid", "2", "unreachable"),
                ("house", "3", "connected"), ("house", "5", "connected"),
            ]  # fmt: skip
            assert cells[3][4] == HOSTILE  # the device's label, shown as text
            assert page.evaluate("window.__xss") is None
            assert page.locator("main img[src=x]").count() == 0
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / Path(f"sources-two-meters-{name}.png"), full_page=True)
            session.check_clean()
        finally:
            session.context.close()
