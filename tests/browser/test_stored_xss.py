"""No stored cross-site scripting through channel and group labels: the pages show them as text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DESKTOP, Session, open_session
from tests.integration.conftest import RunningService

PAYLOADS = (
    '<img src=x onerror="window.__xss=1">',
    "</script><script>window.__xss=2</script>",
    '"><svg onload=window.__xss=3>',
)


@pytest.fixture
def hostile_labels(web_service: RunningService) -> Iterator[None]:
    before = [web_service.get(f"/api/v1/ade7953/channel?index={i}").json() for i in range(1, 4)]
    for i, payload in enumerate(PAYLOADS, start=1):
        body = {**before[i - 1], "active": True, "label": payload, "groupLabel": f"{payload[:50]}{i}"}
        assert web_service.request("PUT", "/api/v1/ade7953/channel", json=body).status_code == 200
    yield
    for doc in before:
        web_service.request("PUT", "/api/v1/ade7953/channel", json=doc)


@pytest.mark.parametrize("path", ["/", "/channels"])
def test_labels_are_shown_as_text(
    browser: Browser, web_service: RunningService, hostile_labels: None, path: str
) -> None:
    session: Session = open_session(browser, web_service, DESKTOP)
    try:
        page = session.goto(path)
        expect(page.get_by_text(PAYLOADS[0]).first).to_be_visible(timeout=10_000)
        assert page.evaluate("window.__xss") is None
        assert page.locator("main img[src=x], main svg[onload]").count() == 0
        session.check_clean()
    finally:
        session.context.close()
