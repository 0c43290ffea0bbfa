"""`GET /metrics` and its own authentication: Digest, a bearer token, Basic credentials or none.

Prometheus cannot answer a Digest challenge, so the `metrics` settings may let `/metrics`, and only
that exact path, skip the Digest middleware (`bypasses_digest`, its `exempt` hook) and be checked
here instead. Every other path, whatever the setting, still meets Digest. Wrong tokens and passwords
count in the same failed-login limiter as wrong Digest responses; a request without credentials is a
client's first try, as in Digest, and does not. The settings are read per request: a change applies
to the next scrape.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from homemeter.api.metrics import Exposition
from homemeter.api.rate_limit import FailureLimiter
from homemeter.config.metrics import MetricsAuth, MetricsConfig

log = logging.getLogger(__name__)

PATH = "/metrics"
REALM = "homemeter"
_JSON = (b"content-type", b"application/json")


class Verdict(enum.Enum):
    OK = "ok"
    MISSING = "no credentials of the configured scheme"  # not a failed login
    WRONG = "wrong credentials"  # a failed login


def _authorization(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value  # type: ignore[no-any-return]
    return b""


def check_bearer(header: bytes, token: str) -> Verdict:
    if header[:7].lower() != b"bearer ":
        return Verdict.MISSING
    sent = header[7:].strip(b" \t")
    return Verdict.OK if hmac.compare_digest(sent, token.encode("ascii")) else Verdict.WRONG


def check_basic(header: bytes, username: str, password: str) -> Verdict:
    """RFC 7617 credentials (user-id and password in UTF-8, as Prometheus and curl send them)."""
    if header[:6].lower() != b"basic ":
        return Verdict.MISSING
    try:
        decoded = base64.b64decode(header[6:].strip(b" \t"), validate=True)
    except (binascii.Error, ValueError):
        return Verdict.WRONG
    user, colon, secret = decoded.partition(b":")
    # Both compared every time (`&`, not `and`): the answer time does not tell which one was wrong.
    ok = hmac.compare_digest(user, username.encode()) & hmac.compare_digest(secret, password.encode())
    return Verdict.OK if colon and ok else Verdict.WRONG


def authenticate(cfg: MetricsConfig, scope: Scope) -> Verdict:
    """The verdict for a request to `/metrics` under the non-Digest modes."""
    if cfg.auth is MetricsAuth.NONE:
        return Verdict.OK
    header = _authorization(scope)
    if cfg.auth is MetricsAuth.BEARER:
        return check_bearer(header, cfg.token.get_secret_value())
    if cfg.auth is MetricsAuth.BASIC:
        return check_basic(header, cfg.username, cfg.password.get_secret_value())
    # Digest: the middleware in front already checked it and set the user.
    return Verdict.OK if scope.get("user") else Verdict.MISSING


class MetricsRoute:
    """Serves `GET /metrics` (after its authentication); anything else goes on to `app`.

    Mounted inside the Digest middleware, so in Digest mode the request arrives authenticated.
    """

    def __init__(
        self,
        app: ASGIApp,
        exposition: Exposition,
        config: Callable[[], MetricsConfig],
        limiter: FailureLimiter,
    ) -> None:
        self.app = app
        self.exposition = exposition
        self.config = config
        self.limiter = limiter

    def bypasses_digest(self, scope: Scope) -> bool:
        """The Digest middleware's `exempt` hook: only `/metrics`, only in the other modes."""
        return scope.get("path") == PATH and self.config().auth is not MetricsAuth.DIGEST

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        cfg = self.config()
        guarded = cfg.auth is not MetricsAuth.NONE and cfg.auth is not MetricsAuth.DIGEST
        client = scope.get("client")
        address: str = client[0] if client else ""
        if guarded:
            wait = self.limiter.retry_after(address)
            if wait:
                body = b'{"success":false,"error":"Too many failed logins, retry in %d s"}' % wait
                await _send(send, 429, body, [(b"retry-after", b"%d" % wait)])
                return
        verdict = authenticate(cfg, scope)
        if verdict is not Verdict.OK:
            if verdict is Verdict.WRONG:
                log.debug("failed metrics login from %s: %s", address, cfg.auth.value)
                self.limiter.record_failure(address)
            await _send(send, 401, b'{"success":false,"error":"Authentication required"}',
                        _challenge(cfg.auth, verdict))  # fmt: skip
            return
        if guarded:
            self.limiter.record_success(address)
        if scope["method"] != "GET":
            body = b'{"success":false,"error":"Method Not Allowed. Use GET."}'
            await _send(send, 405, body, [(b"allow", b"GET")])
            return
        accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), "")
        body, content_type = self.exposition.render(accept)
        await _send(send, 200, body, [], content_type.encode())


def _challenge(auth: MetricsAuth, verdict: Verdict) -> list[tuple[bytes, bytes]]:
    if auth is MetricsAuth.BEARER:
        error = ', error="invalid_token"' if verdict is Verdict.WRONG else ""  # RFC 6750 3.1
        return [(b"www-authenticate", f'Bearer realm="{REALM}"{error}'.encode())]
    if auth is MetricsAuth.BASIC:
        return [(b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode())]  # RFC 7617 2.1
    return []  # Digest: the middleware in front challenges; reaching here unauthenticated is a bug


async def _send(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]], content_type: bytes = _JSON[1]
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
