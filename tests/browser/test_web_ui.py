"""The web UI in Chromium: every page at phone and desktop width, the live dashboard against the API,
a channel edit, the InfluxDB version switch, the MQTT form and the register map download.

Screenshots of every page at both widths go to test-output/screenshots/; page weight and time to
first render are printed (run with -s to see them) and written to test-output/web-pages.txt.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OUTPUT, SCREENSHOTS, Session
from tests.integration.conftest import RunningService
from tests.loopback import free_port, wait_until

PAGES = {
    "/": "index", "/channels": "channels", "/sources": "sources", "/integrations": "integrations",
    "/system": "system", "/logs": "logs",
}  # fmt: skip
# The issue asks for pages in under 1 s on Pi-class hardware; the figures are printed and quoted in the
# README. The assertion has room for a machine shared with other test runs: it catches a regression
# (a blocking script, a huge asset), not a busy neighbour.
FIRST_RENDER_BUDGET_MS = 2500
WEIGHT_BUDGET = 400 * 1024  # bytes transferred for one page with an empty cache

# Transferred bytes (empty cache) and first contentful paint of the page just loaded.
MEASURE = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {
    bytes: nav.transferSize + resources.reduce((t, r) => t + r.transferSize, 0),
    requests: resources.length + 1,
    firstRender: paint ? paint.startTime : null,
    loaded: nav.loadEventEnd,
  };
}"""


UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
  .filter((el) => el.type !== "hidden" && !el.hidden && !el.closest("[aria-hidden=true]"))
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
  .map((el) => el.id || el.name || el.outerHTML.slice(0, 60))"""


def settle(page: Page) -> None:
    """Wait until the page's own start-up requests have been answered (no fixed sleep)."""
    page.wait_for_load_state("load")
    expect(page.locator("main")).not_to_contain_text("Loading…", timeout=10_000)


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} scrolls sideways at {width[1]} px: content {width[0]} px"


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_every_page_loads_clean_and_fits(width: str, request: pytest.FixtureRequest) -> None:
    session: Session = request.getfixturevalue(width)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    report = []
    for path, name in PAGES.items():
        page = session.goto(path)
        settle(page)
        heading = page.locator("h1")
        expect(heading).to_have_text(re.compile(r"\w"))
        assert heading.inner_text() in page.title()
        current = page.locator(f'nav[aria-label="Main"] a[href="{path}"]')
        expect(current).to_have_attribute("aria-current", "page")
        figures = page.evaluate(MEASURE)
        report.append(
            f"{width:7} {path:13} {figures['bytes'] / 1024:6.1f} KiB in {figures['requests']:2} requests, "
            f"first render {figures['firstRender']:5.0f} ms, load {figures['loaded']:5.0f} ms"
        )
        assert figures["firstRender"] is not None, report[-1]
        assert figures["firstRender"] < FIRST_RENDER_BUDGET_MS, report[-1]
        assert figures["bytes"] < WEIGHT_BUDGET, report[-1]
        if width == "phone":
            no_horizontal_scroll(page)
        unlabelled = page.evaluate(UNLABELLED)
        assert not unlabelled, f"{path}: fields without a label: {unlabelled}"
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
    page = session.goto("/")
    page.keyboard.press("Tab")  # the skip link, then the first link of the navigation
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "homemeter"
    session.check_clean()
    text = "\n".join(report)
    print(f"\n{text}")
    with (OUTPUT / "web-pages.txt").open("a") as fh:
        fh.write(text + "\n")


# ---- dashboard -----------------------------------------------------------------------------------


def js_number(value: float, digits: int) -> str:
    """What the page's Intl.NumberFormat (en-US) prints: half away from zero, grouped thousands."""
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{rounded:,.{digits}f}"


def js_power(watts: float) -> str:
    return f"{js_number(watts / 1000, 2)} kW" if abs(watts) >= 1000 else f"{js_number(watts, 0)} W"


def js_energy(wh: float) -> str:
    return f"{js_number(wh / 1000, 2)} kWh" if abs(wh) >= 1000 else f"{js_number(wh, 0)} Wh"


def expected_rows(values: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [str(c["index"]), c["label"], js_number(c["data"]["voltage"], 1) + " V",
         js_power(c["data"]["activePower"]), js_energy(c["data"]["activeEnergyImported"])]
        for c in values
    ]  # fmt: skip


# Records every event the page's EventSource receives, before the page's own handler sees it.
RECORD_EVENTS = """
const Native = window.EventSource;
window.meterEvents = [];
window.EventSource = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => window.meterEvents.push(event.data));
  }
};
"""

# One look at the page: the last event and what the page shows, read in one go (no event in between).
SHOWN = """() => ({
  event: window.meterEvents.at(-1) ?? null,
  count: window.meterEvents.length,
  home: document.querySelector("#node-home [data-value]").textContent,
  rows: [...document.querySelectorAll("#channel-table tbody tr")].map((tr) => {
    const td = [...tr.children].map((c) => c.textContent);
    return [td[0], td[1], td[3], td[2], td[6]];
  }),
})"""


def test_dashboard_shows_the_api_values_every_second(desktop: Session, web_service: RunningService) -> None:
    desktop.context.add_init_script(RECORD_EVENTS)
    page = desktop.goto("/")
    expect(page.locator("#live-state")).to_have_text("live", timeout=10_000)
    shown = wait_until(lambda: (v := page.evaluate(SHOWN))["event"] and v, 10, what="a first event")

    # What the page shows is the event it received, and the event is the API's meter-values body.
    values = json.loads(shown["event"])
    assert values and shown["rows"] == expected_rows(values)
    api_body = web_service.get("/api/v1/ade7953/meter-values").json()
    assert [c["index"] for c in api_body] == [c["index"] for c in values]
    assert set(api_body[0]) == set(values[0]) and set(api_body[0]["data"]) == set(values[0]["data"])
    by_role = {role: sum(c["data"]["activePower"] for c in values if c["role"] == role)
               for role in ("grid", "pv", "battery")}  # fmt: skip
    assert shown["home"] == js_power(by_role["grid"] + abs(by_role["pv"]) + by_role["battery"])

    # The numbers move, about once a second, and the page keeps showing the newest event.
    started = time.monotonic()

    def moved() -> dict[str, Any] | None:
        now: dict[str, Any] = page.evaluate(SHOWN)
        return now if now["count"] >= shown["count"] + 3 and now["rows"] != shown["rows"] else None

    later = wait_until(moved, 15, 0.2, what="changing numbers")
    elapsed = time.monotonic() - started
    assert later["rows"] == expected_rows(json.loads(later["event"]))
    rate = (later["count"] - shown["count"]) / elapsed
    assert 0.3 < rate <= 1.5, f"{rate:.2f} events per second"
    desktop.check_clean()


TODAY = """() => {
  const d = new Date(), y = d.getFullYear(), m = d.getMonth(), n = d.getDate();
  return [new Date(y, m, n).toISOString(), new Date(y, m, n + 1).toISOString()];
}"""


def test_the_chart_draws_the_simulated_history(desktop: Session, web_service: RunningService) -> None:
    """`homemeter simulate` filled two days: today's figures and the hourly chart come from the archive."""
    page = desktop.goto("/")
    chart = wait_until(lambda: page.evaluate(CHART), 15, what="the consumption chart")
    assert chart["labels"] in (23, 24, 25) and chart["painted"]
    assert any(v for v in chart["datasets"].values())  # some consumption in the first hour
    tz = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    # "Today" on the page is the browser's day. The API's default day is the meter's, and under this
    # service's --speed 60 the meter crosses midnight minutes before the browser does: ask for the
    # browser's day.
    start, end = page.evaluate(TODAY)
    params = {"by": "role", "tz": tz, "from": start, "to": end}
    doc = web_service.get("/api/v1/history/energy", params=params).json()
    grid = next(s for s in doc["series"] if s["key"] == "grid")
    api_kwh = sum(v or 0 for v in grid["imported"]) / 1000
    shown = page.locator("#today .kpi", has_text="Imported").locator(".value").inner_text()
    number, unit = shown.split()
    value = float(number.replace(",", "")) * {"Wh": 0.001, "kWh": 1, "MWh": 1000}[unit]  # in kWh
    assert api_kwh > 0 and abs(value - api_kwh) <= 0.02 * api_kwh + 0.01, (shown, api_kwh)
    page.get_by_role("button", name="Month").click()
    expect(page.locator("#period-label")).not_to_have_text("\u2013")  # the placeholder dash
    expect(page.locator("#history-note")).not_to_contain_text("not available in this build")
    desktop.check_clean()


# ---- channels ------------------------------------------------------------------------------------


def test_channel_edit_is_saved_and_shown(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/channels")
    card = page.locator("#channel-3")
    card.locator("summary").click()
    card.get_by_label("Name").fill("Kitchen counter")
    card.get_by_label("Group").fill("Kitchen")
    card.get_by_label("Rated current (A)").fill("50")
    card.get_by_role("button", name="Save").click()
    expect(card.get_by_role("status")).to_have_text("Saved.")
    stored = web_service.get("/api/v1/ade7953/channel?index=3").json()
    assert (stored["label"], stored["groupLabel"], stored["ctSpecification"]["currentRating"]) == (
        "Kitchen counter", "Kitchen", 50.0)  # fmt: skip

    page.reload()
    expect(page.locator("#channel-3 summary")).to_contain_text("3 · Kitchen counter")
    page.locator("#channel-3 summary").click()
    expect(page.locator("#channel-3").get_by_label("Name")).to_have_value("Kitchen counter")
    desktop.check_clean()


def test_channel_errors_are_shown_at_the_field(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/channels")
    card = page.locator("#channel-4")
    card.locator("summary").click()
    before = web_service.get("/api/v1/ade7953/channel?index=4").json()
    card.get_by_label("Rated current (A)").fill("20000")
    card.get_by_role("button", name="Save").click()
    field = card.get_by_label("Rated current (A)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(card.locator("#ch4-ctSpecification-currentRating-error")).to_contain_text("10000")
    assert web_service.get("/api/v1/ade7953/channel?index=4").json() == before
    # Chromium logs the API's 400 answer as a failed resource load; nothing else may have failed.
    assert all("400" in e for e in desktop.errors), desktop.errors
    assert not desktop.foreign


def test_role_change_asks_first(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/channels")
    card = page.locator("#channel-5")
    card.locator("summary").click()
    card.get_by_label("Group").fill("Generation")
    card.get_by_label("Role").select_option("pv")
    card.get_by_role("button", name="Save").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("energy counters start again from zero")
    dialog.get_by_role("button", name="Cancel").click()
    assert web_service.get("/api/v1/ade7953/channel?index=5").json()["role"] == "load"
    card.get_by_role("button", name="Save").click()
    page.get_by_role("dialog").get_by_role("button", name="Change role").click()
    expect(card.get_by_role("status")).to_have_text("Saved.")
    assert web_service.get("/api/v1/ade7953/channel?index=5").json()["role"] == "pv"
    desktop.check_clean()


# ---- integrations --------------------------------------------------------------------------------


def test_influxdb_form_shows_only_the_chosen_versions_fields(
    desktop: Session, web_service: RunningService
) -> None:
    page = desktop.goto("/integrations")
    section = page.locator("#influxdb")
    version = section.get_by_label("Version")
    v1 = [section.locator(f"#influxdb-{n}") for n in ("database", "username", "password")]
    v2 = [section.locator(f"#influxdb-{n}") for n in ("organization", "bucket", "token")]
    expect(version).to_have_value("2")  # the device's default
    for field in v2:
        expect(field).to_be_visible()
    for field in v1:
        expect(field).to_be_hidden()
    version.select_option("1")
    for field in v1:
        expect(field).to_be_visible()
    for field in v2:
        expect(field).to_be_hidden()
    expect(section.locator("#influxdb-server")).to_be_visible()  # shared fields stay

    section.locator("#influxdb-database").fill("energy")
    section.get_by_role("button", name="Save").click()
    expect(page.locator(".notice.ok")).to_contain_text("InfluxDB settings saved")
    stored = web_service.get("/api/v1/influxdb/config").json()
    assert (stored["version"], stored["database"]) == (1, "energy")
    desktop.check_clean()


def test_mqtt_form_saves_and_shows_the_status(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/integrations")
    section = page.locator("#mqtt")
    expect(section.locator("#mqtt-username")).to_be_hidden()  # only with credentials
    section.get_by_label("Server").fill("127.0.0.1")
    section.get_by_label("Port").fill("1883")
    section.get_by_label("Topic").fill("home/meter")
    section.locator("#mqtt-useCredentials").check()
    expect(section.locator("#mqtt-username")).to_be_visible()
    section.locator("#mqtt-username").fill("meter")
    section.locator("#mqtt-enabled").check()
    section.get_by_role("button", name="Save").click()
    expect(page.locator(".notice.ok")).to_contain_text("Custom MQTT settings saved")
    stored = web_service.get("/api/v1/custom-mqtt/config").json()
    assert (stored["enabled"], stored["server"], stored["topic"], stored["username"]) == (
        True, "127.0.0.1", "home/meter", "meter")  # fmt: skip
    assert stored["password"] == "********"  # the stored secret was kept, never shown
    status = web_service.get("/api/v1/custom-mqtt/status").json()["status"]
    expect(section.locator("[data-status]")).to_have_attribute("data-status", status)
    desktop.check_clean()


def test_register_map_download_matches_the_json(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/integrations")
    link = page.locator("#register-csv")
    with page.expect_download() as info:
        link.click()
    download = info.value
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    expected = web_service.get("/api/v1/modbus/register-map").json()
    assert [{k: str(v) for k, v in r.items()} for r in expected] == rows
    assert download.suggested_filename.endswith(".csv")
    page.locator("#modbus details summary").click()
    shown = page.locator("table.registers tbody tr")
    expect(shown).to_have_count(len(expected))
    assert shown.first.locator("td").first.inner_text() == str(expected[0]["address"])
    desktop.check_clean()


def test_mdns_home_assistant_and_docs_sections(desktop: Session) -> None:
    page = desktop.goto("/integrations")
    expect(page.locator("#mdns").get_by_role("textbox", name="Hostname")).to_have_value("homemeter.local")
    expect(page.locator("#mdns")).not_to_contain_text("not available in this build")
    expect(page.locator("#home-assistant")).to_contain_text("EnergyMe integration")
    expect(page.get_by_role("link", name=re.compile("Swagger UI"))).to_have_attribute("href", "/docs")
    desktop.check_clean()


# ---- system and logs -----------------------------------------------------------------------------


def test_factory_reset_needs_the_typed_word(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/system")
    page.get_by_role("button", name="Factory reset…").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Reset everything")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Type RESET to confirm").fill("reset")
    expect(confirm).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert web_service.thread.is_alive()
    desktop.check_clean()


def test_log_levels_and_log_filter(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/system")
    page.locator("#log-save").select_option("DEBUG")
    page.locator("#log-levels").get_by_role("button", name="Save").click()
    expect(page.locator(".notice.ok")).to_contain_text("save=DEBUG")
    assert web_service.get("/api/v1/logs/level").json()["save"] == "DEBUG"

    page = desktop.goto("/logs")
    expect(page.locator("#log-state")).to_contain_text("lines shown")
    page.get_by_label("Show").select_option("ERROR")
    levels = page.locator(".log-table td.level").all_inner_texts()
    assert all(level in ("ERROR", "FATAL") for level in levels)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#log-state")).to_contain_text("paused")
    desktop.check_clean()


# ---- history charts ------------------------------------------------------------------------------

# The dashboard's arithmetic (balance, "Other", self-consumption) checked on exact numbers: a stand-in
# answers in the history query API's shape (web/src/js/history.js `queryHistory`), per bucket in Wh: grid
# 500 in / 200 out, solar 1000, battery 100 out / 50 in, loads Kitchen 300 and Heat pump 700. So the
# home uses 1350 Wh per bucket, 350 of them not measured by a load channel ("Other").
BUCKETS = {"hour": 24, "day": 30, "month": 12, "year": 3}
ROLE_SERIES = [("grid", 500, 200), ("pv", 1000, 0), ("battery", 100, 50)]
GROUP_SERIES = [("Kitchen", 300), ("Heat pump", 700)]


def fake_history(query: dict[str, str]) -> dict[str, Any]:
    n = BUCKETS[query["resolution"]]
    buckets = [f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z" for i in range(n)]
    if query["by"] == "role":
        series = [{"key": r, "label": r, "role": r, "imported": [i] * n, "exported": [e] * n}
                  for r, i, e in ROLE_SERIES]  # fmt: skip
    else:
        series = [{"key": g, "label": g, "role": "load", "imported": [w] * n, "exported": [0] * n}
                  for g, w in GROUP_SERIES]  # fmt: skip
    return {"buckets": buckets, "series": series}


def test_history_charts_today_and_csv(desktop: Session, web_service: RunningService) -> None:
    page = desktop.page
    doc = web_service.get("/openapi.json").json()
    doc["paths"]["/api/v1/history/energy"] = {"get": {"responses": {"200": {"description": "stand-in"}}}}
    queries: list[dict[str, str]] = []

    def history(route: Any) -> None:
        query = dict(parse_qsl(urlsplit(route.request.url).query))
        queries.append(query)
        route.fulfill(json=fake_history(query))

    page.route("**/openapi.json", lambda route: route.fulfill(json=doc))
    page.route("**/api/v1/history/energy?*", history)
    desktop.goto("/")

    today = page.locator("#today")
    expect(today).to_contain_text("12.00 kWh")  # 24 h x 500 Wh imported
    expect(today).to_contain_text("4.80 kWh")  # exported
    expect(today).to_contain_text("32.40 kWh")  # the home: 24 x 1350 Wh
    expect(today.locator(".kpi", has_text="Self-consumption")).to_contain_text("80 %")  # (24-4.8)/24
    expect(today.locator(".kpi", has_text="Self-sufficiency")).to_contain_text("63 %")  # (32.4-12)/32.4

    chart = wait_until(lambda: page.evaluate(CHART), 10, what="the consumption chart")
    assert chart["labels"] == 24
    assert chart["datasets"] == {"Kitchen": 0.3, "Heat pump": 0.7, "Other": 0.35}  # kWh per hour
    assert chart["painted"]

    page.get_by_role("button", name="Balance").click()
    expect(page.locator("#history-kpis")).to_contain_text("Self-sufficiency")
    page.get_by_role("button", name="Month").click()
    expect(page.locator("#next")).to_be_disabled()  # this month: nothing after it yet
    label = page.locator("#period-label").inner_text()
    page.get_by_role("button", name="Previous period").click()
    expect(page.locator("#period-label")).not_to_have_text(label)
    expect(page.locator("#next")).to_be_enabled()
    assert {q["resolution"] for q in queries} >= {"hour", "day"} and {q["by"] for q in queries} >= {
        "role",
        "group",
    }

    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(info.value.path().read_text(encoding="utf-8"))))
    assert info.value.suggested_filename.startswith("energy_balance_month_")
    assert rows[0][:3] == ["period", "Grid import (kWh)", "Grid export (kWh)"] and len(rows) == 1 + 30
    assert rows[1][1:3] == ["0.500", "-0.200"]
    desktop.check_clean()


# What the history chart holds: labels, each dataset's first value, and whether pixels were drawn.
CHART = """() => {
  const canvas = document.querySelector("#history-chart");
  const chart = window.Chart && window.Chart.getChart(canvas);
  if (!chart) return null;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return {
    labels: chart.data.labels.length,
    datasets: Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data[0]])),
    painted: pixels.some((v, i) => i % 4 === 3 && v > 0),
  };
}"""


# ---- issues and password -------------------------------------------------------------------------


def test_an_issue_shows_in_the_header_and_is_acknowledged(
    desktop: Session, web_service: RunningService
) -> None:
    issues = web_service.services.issues
    web_service.loop.call_soon_threadsafe(
        issues.event, "credentials_mode_fixed", "Test issue from the browser test"
    )
    page = desktop.goto("/system")
    expect(page.locator(".issues-badge")).to_have_text("1 issue")
    item = page.locator("#issue-list li", has_text="Test issue from the browser test")
    item.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".notice.ok")).to_contain_text("acknowledged")
    wait_until(
        lambda: not web_service.get("/api/v1/system/issues").json()["issues"], 5, what="the issue gone"
    )
    expect(page.locator("#issue-list")).to_contain_text("No issues")
    desktop.check_clean()


def test_wrong_current_password_is_reported(desktop: Session) -> None:
    page = desktop.goto("/system")
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password", exact=True).fill("a-new-password")
    page.get_by_label("New password again").fill("a-new-password")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".notice.error")).to_contain_text("Current password is incorrect")
    assert all("401" in e for e in desktop.errors), desktop.errors  # the API's answer, logged by Chromium


# ---- MQTT against a real broker ------------------------------------------------------------------


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto of our own on a free loopback port (never the system service)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto is not installed (Debian package mosquitto)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _listening(port), 10, what="mosquitto listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_mqtt_status_becomes_connected(desktop: Session, web_service: RunningService, mosquitto: int) -> None:
    if web_service.runtime.components.get("mqtt") is None:
        pytest.skip("this build has no MQTT publisher yet (issue 9): the form is tested above")
    page = desktop.goto("/integrations")
    section = page.locator("#mqtt")
    section.get_by_label("Server").fill("127.0.0.1")
    section.get_by_label("Port").fill(str(mosquitto))
    section.locator("#mqtt-useCredentials").uncheck()
    section.locator("#mqtt-enabled").check()
    section.get_by_role("button", name="Save").click()
    expect(page.locator(".notice.ok")).to_contain_text("Custom MQTT settings saved")
    expect(section.locator("[data-status]")).to_have_attribute("data-status", "Connected", timeout=20_000)
    # Last attempt: "just now" until the next status refresh (every 5 s), then "N s ago".
    expect(section).to_contain_text("ago", timeout=15_000)
    desktop.check_clean()


# ---- the power-flow rules, in the browser's own module -------------------------------------------

FLOW = """async (values) => (await import("/static/js/power-flow.js")).powerFlow(values)"""


def channel(index: int, role: str, watts: float, group: str = "") -> dict[str, Any]:
    label = f"ch{index}"
    return {"index": index, "label": label, "phase": 1, "groupLabel": group or label, "role": role,
            "data": {"activePower": watts}}  # fmt: skip


def test_power_flow_rules(desktop: Session) -> None:
    page = desktop.goto("/logs")  # any page: the module is imported on its own
    flow = page.evaluate(FLOW, [
        channel(0, "grid", -500), channel(1, "pv", 3000), channel(2, "battery", -1000),
        channel(3, "load", 800, "Kitchen"), channel(4, "load", 200, "Kitchen"), channel(5, "load", 300),
    ])  # fmt: skip
    assert (flow["grid"], flow["solar"], flow["storage"], flow["home"]) == (-500, 3000, -1000, 1500)
    assert [(g["name"], g["power"]) for g in flow["loads"]] == [("Kitchen", 1000), ("ch5", 300)]
    assert flow["other"] == 200  # home - measured loads
    # A hybrid inverter stands for the battery when both are measured.
    flow = page.evaluate(
        FLOW, [channel(0, "grid", 100), channel(1, "inverter", 400), channel(2, "battery", -50)]
    )
    assert (flow["storage"], flow["home"], flow["solar"]) == (400, 500, None)
    # Without a source channel, the home is the sum of the loads and nothing is "other".
    flow = page.evaluate(FLOW, [channel(3, "load", 120), channel(4, "load", 80)])
    assert (flow["grid"], flow["home"], flow["other"]) == (None, 200, 0)
    desktop.check_clean()


def test_configuration_backup_downloads_and_restores(desktop: Session, web_service: RunningService) -> None:
    page = desktop.goto("/system")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the configuration").click()
    backup = json.loads(info.value.path().read_text(encoding="utf-8"))
    assert backup["configuration"]["channels"][0]["index"] == 0
    web_service.request(
        "PATCH", "/api/v1/ade7953/channel", json={"index": 7, "label": "Changed after the backup"}
    )
    page.get_by_label("Configuration backup (.json)").set_input_files(info.value.path())
    page.get_by_role("button", name="Restore configuration").click()
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    expect(page.locator(".notice.ok")).to_be_visible()
    restored = web_service.get("/api/v1/ade7953/channel?index=7").json()
    assert restored["label"] == backup["configuration"]["channels"][7]["label"]
    desktop.check_clean()
