"""Where the lines go and what the server's answer means (reference integrations.md 3.2, 3.4).

v1: `POST /write?db=<database>` with `Authorization: Basic` (always sent, as the device does, even
empty). v2: `POST /api/v2/write?org=&bucket=&precision=ns` with `Authorization: Token`; InfluxDB 3
takes the same request. Unlike the device, query values are URL-encoded, and HTTPS checks the
server's certificate against the system's CAs (or `caFile`) unless `verifySsl` is off.

Answers: 2xx written; 400 and 422 bad data (InfluxDB writes the good lines of a partial write and
names the first bad one), not worth repeating; 413 too large, worth repeating smaller; anything else
(refused connection, timeout, 401/403/404: a setting to fix, 429/5xx: a busy server) is retried
later with the points kept, honouring `Retry-After`.
"""

from __future__ import annotations

import base64
import email.utils
import json
import ssl
import time
from dataclasses import dataclass
from enum import Enum

import httpx

from homemeter.config.influxdb import InfluxDbConfig
from homemeter.errors import ConfigRejected

TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # s; a 5,000-line batch takes InfluxDB well under 1 s
RETRY_AFTER_CAP = 3600.0  # s: a longer Retry-After is read as this
TEXT_LIMIT = 200  # characters of the server's error text kept for the status

# The device's negative "HTTP codes" for failures below HTTP (reference integrations.md 3.5).
CONNECTION_REFUSED, NOT_CONNECTED, CONNECTION_LOST, READ_TIMEOUT = -1, -4, -5, -11


class Verdict(Enum):
    WRITTEN = "written"
    RETRY = "retry"  # keep the points, try again later
    TOO_LARGE = "too large"  # 413: try again with fewer points
    REJECTED = "rejected"  # 400/422: the data itself is refused


@dataclass(frozen=True, slots=True)
class Answer:
    verdict: Verdict
    code: int  # HTTP status, or the device's negative code when there was no HTTP answer
    text: str = ""  # the server's error text, or what failed below HTTP
    retry_after: float | None = None  # s, when the server said


@dataclass(frozen=True)
class Target:
    """One configuration's write request: URL with query, headers, TLS verification."""

    url: httpx.URL
    headers: dict[str, str]
    verify: ssl.SSLContext | bool

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self.verify, timeout=TIMEOUT, follow_redirects=False)


def target(cfg: InfluxDbConfig) -> Target:
    """The request for `cfg`; `ConfigRejected` when its CA file cannot be used."""
    if cfg.version == 1:
        path, params = "/write", {"db": cfg.database}
        user = f"{cfg.username}:{cfg.password.get_secret_value()}".encode()
        auth = "Basic " + base64.b64encode(user).decode()
    else:
        path, params = "/api/v2/write", {"org": cfg.organization, "bucket": cfg.bucket, "precision": "ns"}
        auth = "Token " + cfg.token.get_secret_value()
    scheme = "https" if cfg.useSsl else "http"
    url = httpx.URL(scheme=scheme, host=cfg.server, port=cfg.port, path=path, params=params)
    headers = {"Authorization": auth, "Content-Type": "text/plain; charset=utf-8"}
    return Target(url, headers, _verify(cfg))


def _verify(cfg: InfluxDbConfig) -> ssl.SSLContext | bool:
    if not cfg.useSsl:
        return True  # not used for http
    if not cfg.verifySsl:
        return False
    try:
        # With a CA file only that file is trusted; without, the system's CAs (not certifi's copy).
        return ssl.create_default_context(cafile=cfg.caFile or None)
    except (OSError, ssl.SSLError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigRejected(f"caFile: cannot use {cfg.caFile!r} as CA certificates ({reason})") from err


def judge(response: httpx.Response) -> Answer:
    """What an HTTP answer means for the batch that was sent."""
    code = response.status_code
    if 200 <= code < 300:
        return Answer(Verdict.WRITTEN, code)
    text = server_text(response)
    if code == 413:
        return Answer(Verdict.TOO_LARGE, code, text)
    if code in (400, 422):
        return Answer(Verdict.REJECTED, code, text)
    return Answer(Verdict.RETRY, code, text, retry_after(response.headers.get("Retry-After")))


def failure(err: httpx.TransportError) -> Answer:
    """No HTTP answer: retried; the code says what failed (as the device's codes), the text why."""
    if isinstance(err, httpx.TimeoutException):
        code = READ_TIMEOUT
    elif isinstance(err, httpx.ConnectError):
        code = CONNECTION_REFUSED
    elif isinstance(err, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        code = CONNECTION_LOST
    else:
        code = NOT_CONNECTED
    return Answer(Verdict.RETRY, code, root_cause(err)[:TEXT_LIMIT])


def root_cause(err: BaseException) -> str:
    """The innermost reason: httpx says "All connection attempts failed" for a refused connection."""
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for e in reversed(chain):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {e.verify_message}"
        if isinstance(e, ssl.SSLError):
            return f"TLS: {e.reason or e}"
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
    return str(err) or type(err).__name__


def server_text(response: httpx.Response) -> str:
    """InfluxDB's reason: v1 `{"error": ...}`, v2/v3 `{"code": ..., "message": ...}`, else the body."""
    try:
        doc = json.loads(response.content)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = doc.get("error") or doc.get("message")
        if isinstance(message, str):
            return message[:TEXT_LIMIT]
    header = response.headers.get("X-Influxdb-Error")
    text = header or response.text.strip() or response.reason_phrase
    return " ".join(text.split())[:TEXT_LIMIT]


def retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (RFC 9110: delay-seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), RETRY_AFTER_CAP)
