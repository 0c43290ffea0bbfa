"""The web UI: its pages and assets, served from the installed package behind the API's Digest auth.

`web/build.mjs` (run by `make install`) writes them to `homemeter/web/static/`, so running homemeter
never needs Node, and nothing is loaded from the internet: a LAN without it keeps a working UI.
Assets are read once when the app is built and answered from memory with validators: a browser
revalidating a page costs one 304 without a body. Text assets go out gzip-compressed when the browser
accepts it (Chart.js: 210 kB raw, 70 kB gzip).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
# Everything is revalidated on each use: a 304 is cheap, and a rebuilt UI is seen at once.
CACHE = "no-cache"
# Only our own origin: a page that tried to load anything from elsewhere would be refused (and the
# browser test would see the console error).
POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff"}
# The device's page paths, so its users' bookmarks land on the page that has the same things.
DEVICE_PATHS = {
    "channel": "/channels",
    "calibration": "/channels",
    "info": "/system",
    "configuration": "/system",
    "update": "/system",
    "log": "/logs",
    "index.html": "/",
}
NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>homemeter</title></head>
<body><h1>homemeter</h1><p>The web interface was not built into this installation. Run
<code>make install</code> where Node.js and npm are available (it builds <code>web/</code>), or use the
REST API: <a href="/docs">/docs</a>.</p></body></html>
"""


@dataclass
class Asset:
    """One file's bytes and validators; the gzip form is made on first request and kept."""

    body: bytes
    media_type: str
    mtime: float
    etag: str = ""
    _gzipped: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Weak: the identity and the gzip form are the same representation for caching purposes.
        self.etag = f'W/"{hashlib.blake2b(self.body, digest_size=10).hexdigest()}"'

    @property
    def compressible(self) -> bool:
        return self.media_type.startswith(COMPRESSIBLE) and len(self.body) > 1024

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=9, mtime=0)
        return self._gzipped

    def response(self, request: Request, headers: dict[str, str] | None = None) -> Response:
        """200 with the body (gzip if accepted), or 304 when the browser's copy is current."""
        out = {
            "ETag": self.etag,
            "Last-Modified": formatdate(self.mtime, usegmt=True),
            "Cache-Control": CACHE,
            **(headers or {}),
        }
        if self.compressible:
            out["Vary"] = "Accept-Encoding"
        if _not_modified(request, self):
            return Response(status_code=304, headers=out)
        body = self.body
        if self.compressible and "gzip" in request.headers.get("accept-encoding", ""):
            body = self.gzipped()
            out["Content-Encoding"] = "gzip"
        return Response(body, media_type=self.media_type, headers=out)


def _not_modified(request: Request, asset: Asset) -> bool:
    """RFC 9110 13.1: If-None-Match decides when present (weak comparison), else If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or asset.etag.removeprefix("W/") in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return int(asset.mtime) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):  # an unparseable date is ignored (RFC 9110 13.1.3)
        return False


def load_assets(root: Path) -> dict[str, Asset]:
    """Every file below `root` by its path relative to it ("index.html", "js/api.js")."""
    assets: dict[str, Asset] = {}
    if not root.is_dir():
        return assets
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/"):
                media_type += "; charset=utf-8"
            assets[path.relative_to(root).as_posix()] = Asset(
                path.read_bytes(), media_type, path.stat().st_mtime
            )
    return assets


def routes(root: Path = STATIC_DIR) -> list[Route]:
    """`/` (dashboard), `/<page>` for each built page, `/static/...`, and the device's page paths.

    Mounted last: the API, the OpenAPI document and Swagger UI keep their paths.
    """
    assets = load_assets(root)
    if "index.html" not in assets:
        log.warning("web UI not built (%s has no index.html): only the API is served", root)

    async def page(request: Request) -> Response:
        name = request.path_params.get("page", "index")
        if name in DEVICE_PATHS:
            return RedirectResponse(DEVICE_PATHS[name], status_code=302)
        asset = assets.get(f"{name}.html")
        if asset is None:
            if "index.html" not in assets:
                return HTMLResponse(NOT_BUILT, status_code=503)
            return HTMLResponse(_missing(name), status_code=404, headers=PAGE_HEADERS)
        return asset.response(request, PAGE_HEADERS)

    async def static(request: Request) -> Response:
        asset = assets.get(request.path_params["path"])
        if asset is None or asset.media_type.startswith("text/html"):
            return Response("Not found", status_code=404, media_type="text/plain")
        return asset.response(request, {"X-Content-Type-Options": "nosniff"})

    return [
        Route("/", page, methods=["GET"]),
        Route("/static/{path:path}", static, methods=["GET"]),
        Route("/{page:str}", page, methods=["GET"]),
    ]


def _missing(name: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found - homemeter</title>'
        '<link rel="stylesheet" href="/static/css/app.css"></head><body><main class="page">'
        f"<h1>No page here</h1><p>There is no page called {_escape(name)}. "
        '<a href="/">Go to the dashboard</a>.</p></main></body></html>'
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
