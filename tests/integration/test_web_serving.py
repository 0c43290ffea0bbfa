"""Serving the web UI (behind Digest, with cache validators, gzip) and the meter-values event stream.

The pages themselves are driven in a browser by tests/browser/; here are the HTTP facts a browser
relies on, checked with plain clients.
"""

from __future__ import annotations

import gzip
import itertools
import json
import time
from pathlib import Path

import httpx
import pytest
import requests
from starlette.applications import Starlette

from homemeter.api.web import STATIC_DIR, Asset, load_assets, routes
from tests.integration.conftest import PASSWORD, RunningService, wait_until

PAGES = ("/", "/channels", "/sources", "/integrations", "/system", "/logs")
built = pytest.mark.skipif(not (STATIC_DIR / "index.html").exists(), reason="web UI not built (make install)")


@built
@pytest.mark.parametrize("path", PAGES)
def test_pages_need_the_login_and_load_only_local_assets(service: RunningService, path: str) -> None:
    assert requests.get(service.url + path, timeout=5).status_code == 401  # the browser's own prompt
    page = service.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text and "http://" not in page.text  # nothing from the internet
    for asset in ("/static/css/app.css", "/static/icon.svg", f"/static/js/pages/{page_name(path)}.js"):
        assert asset in page.text
        assert service.get(asset).status_code == 200, asset


def page_name(path: str) -> str:
    return path.strip("/") or "index"


@built
def test_assets_are_revalidated_with_304_and_sent_compressed(service: RunningService) -> None:
    url = "/static/vendor/chart.umd.min.js"
    first = service.get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    raw = first.raw.read()
    assert first.headers["content-encoding"] == "gzip" and first.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(raw) == (STATIC_DIR / "vendor" / "chart.umd.min.js").read_bytes()
    assert len(raw) < 0.45 * len(gzip.decompress(raw))
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = service.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert service.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert service.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    plain = service.get("/static/css/app.css", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text.startswith("/*")


def test_openapi_document_is_cheap_to_revalidate(service: RunningService) -> None:
    first = service.get("/openapi.json")
    assert first.json()["openapi"]
    assert service.get("/openapi.json", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    assert service.get("/docs").status_code == 200  # Swagger UI keeps its path


@built
def test_device_page_paths_lead_to_our_pages(service: RunningService) -> None:
    for device, ours in (("/channel", "/channels"), ("/info", "/system"), ("/log", "/logs")):
        answer = service.get(device, allow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (302, ours)
    assert service.get("/no-such-page").status_code == 404
    assert service.get("/static/../config.json").status_code == 404
    assert service.get("/static/index.html").status_code == 404  # pages only at their own paths


async def test_without_a_build_the_page_says_how_to_get_one(tmp_path: Path) -> None:
    app = Starlette(routes=routes(tmp_path / "missing"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get("/")
    assert answer.status_code == 503 and "make install" in answer.text


def test_assets_are_read_with_types(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("export {};")
    (tmp_path / "page.html").write_text("<!doctype html>")
    (tmp_path / ".hidden").write_text("x")
    assets = load_assets(tmp_path)
    assert set(assets) == {"js/a.js", "page.html"}
    assert assets["js/a.js"].media_type == "text/javascript; charset=utf-8"
    assert Asset(b"x" * 10, "image/png", 0).compressible is False


# ---- the event stream ----------------------------------------------------------------------------

STREAM = "/api/v1/ade7953/meter-values/stream"


def events(service: RunningService, count: int) -> list[tuple[float, list[dict[str, object]]]]:
    auth = httpx.DigestAuth("admin", PASSWORD)
    out = []
    with (
        httpx.Client(auth=auth, timeout=10) as client,
        client.stream("GET", service.url + STREAM, headers={"Accept": "text/event-stream"}) as answer,
    ):
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["cache-control"] == "no-cache"
        for line in answer.iter_lines():
            if line.startswith("data: "):
                out.append((time.monotonic(), json.loads(line.removeprefix("data: "))))
                if len(out) == count:
                    break
    return out


def test_stream_sends_the_meter_values_once_a_second(service: RunningService) -> None:
    received = events(service, 3)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(received)]
    assert all(0.9 <= gap <= 2.5 for gap in gaps), gaps
    polled = service.get("/api/v1/ade7953/meter-values").json()
    for _, values in received:
        assert [c["index"] for c in values] == [c["index"] for c in polled]
        assert all(set(c["data"]) == set(polled[0]["data"]) for c in values)
    assert received[0][1] != received[-1][1]  # newest values, not one cached copy


def test_stream_event_is_the_meter_values_body(service: RunningService) -> None:
    # The same bytes as GET meter-values for the same snapshot (one cache renders both): an event
    # compared with the cache right after it arrived matches unless a new snapshot came in between.
    cached = service.services.meter_values
    auth = httpx.DigestAuth("admin", PASSWORD)
    matches = 0
    with (
        httpx.Client(auth=auth, timeout=10) as client,
        client.stream("GET", service.url + STREAM, headers={"Accept": "text/event-stream"}) as answer,
    ):
        for n, line in enumerate(answer.iter_lines()):
            if line.startswith("data: ") and line.removeprefix("data: ").encode() == cached.get():
                matches += 1
            if matches or n > 20:
                break
    assert matches
    once = service.get(STREAM)  # without Accept: text/event-stream, the body once as JSON
    assert once.headers["content-type"] == "application/json"
    assert [c["index"] for c in once.json()] == [c["index"] for c in json.loads(cached.get())]


def test_open_stream_does_not_hold_up_a_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.conftest import start_service

    running = start_service(tmp_path / "data", monkeypatch)
    auth = httpx.DigestAuth("admin", PASSWORD)
    with httpx.Client(auth=auth, timeout=10) as client:
        with client.stream("GET", running.url + STREAM, headers={"Accept": "text/event-stream"}) as answer:
            lines = answer.iter_lines()
            wait_until(lambda: next(lines).startswith("data: "), 5, what="a first event")
            started = time.monotonic()
            running.stop()
            assert not running.thread.is_alive()
            assert time.monotonic() - started < 3.0  # not the 5 s HTTP grace period
            remaining = list(lines)  # the stream ended cleanly
        assert all(not line.startswith("data: ") or json.loads(line[6:]) for line in remaining)
