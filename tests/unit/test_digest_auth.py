"""Digest math, header parsing, nonce/nc rules, the failed-login limiter and the credentials file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests.auth
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from homemeter.api import digest_auth
from homemeter.api.digest_auth import (
    DigestAuthMiddleware,
    DigestVerifier,
    FailureLimiter,
    Refusal,
    _parse_params,
    parse_digest_header,
)
from homemeter.errors import ConfigError, StoreCorrupted, StoreError
from homemeter.store.credentials import (
    REALM,
    USERNAME,
    Credentials,
    CredentialStore,
    generate_password,
)

PASSWORD = "correct horse battery"
CREDS = Credentials.from_password(PASSWORD)
HEALTH = "/api/v1/health"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str:
        """The header's value; for the challenge, the MD5 one (what requests and curl answer)."""
        values = [v.decode() for k, v in self.headers if k == name.encode()]
        if name == "www-authenticate":
            sha256, md5 = values  # exactly two, SHA-256 first, on one nonce
            assert sha256.replace("algorithm=SHA-256", "algorithm=MD5") == md5
            return md5
        assert len(values) == 1, f"{name}: {values}"
        return values[0]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Harness:
    """The middleware around an app that records the scopes it was called with."""

    clock: FakeClock = field(default_factory=FakeClock)
    ttl: float = 300.0
    seen: list[Scope] = field(default_factory=list)

    def __post_init__(self) -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            self.seen.append(scope)
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok"})

        self.limiter = FailureLimiter(clock=self.clock)
        self.mw = DigestAuthMiddleware(
            app,
            credentials=lambda: CREDS,
            exempt=lambda scope: scope.get("path") == HEALTH,
            limiter=self.limiter,
            nonce_ttl=self.ttl,
        )

    async def request(
        self,
        target: str = "/api/v1/x",
        *,
        auth: str | None = None,
        method: str = "GET",
        client: str = "192.0.2.1",
        kind: str = "http",
    ) -> Reply:
        path, _, query = target.partition("?")
        headers = [(b"host", b"meter")]
        if auth is not None:
            headers.append((b"authorization", auth.encode("latin-1")))
        scope: Scope = {
            "type": kind,
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": (client, 50000),
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            sent.append(message)

        await self.mw(scope, receive, send)
        if kind == "websocket":
            return Reply(sent[0].get("code", 0), [], b"")
        start, body = sent
        return Reply(start["status"], start["headers"], body["body"])

    async def nonce(self) -> str:
        reply = await self.request()
        assert reply.status == 401
        return challenge_params(reply)["nonce"]


def challenge_params(reply: Reply) -> dict[str, str]:
    params = parse_digest_header(reply.header("www-authenticate"))
    assert params is not None
    return params


def digest(  # noqa: PLR0913 - mirrors the header's fields, a test-only builder
    nonce: str,
    *,
    uri: str = "/api/v1/x",
    nc: int = 1,
    password: str = PASSWORD,
    method: str = "GET",
    algorithm: str | None = "MD5",
    username: str = USERNAME,
    realm: str = REALM,
    cnonce: str = "0a4f113b",
) -> str:
    """An Authorization header computed independently of the code under test."""
    h: Callable[[bytes], Any] = hashlib.sha256 if algorithm == "SHA-256" else hashlib.md5
    ha1 = h(f"{username}:{realm}:{password}".encode()).hexdigest()
    ha2 = h(f"{method}:{uri}".encode()).hexdigest()
    nc_hex = f"{nc:08x}"
    response = h(f"{ha1}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    alg = f", algorithm={algorithm}" if algorithm else ""
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
        f'{alg}, response="{response}", qop=auth, nc={nc_hex}, cnonce="{cnonce}"'
    )


# ---- header parser


def test_parse_mixed_quoted_and_token_values() -> None:
    got = parse_digest_header(
        'Digest username="admin", realm="homemeter", nc=00000001, qop=auth, algorithm=MD5'
    )
    assert got == {
        "username": "admin",
        "realm": "homemeter",
        "nc": "00000001",
        "qop": "auth",
        "algorithm": "MD5",
    }


def test_parse_quoted_value_with_commas_and_equals() -> None:
    got = parse_digest_header('Digest uri="/a?x=1,2&y=3", realm="a, b", nonce="n"')
    assert got == {"uri": "/a?x=1,2&y=3", "realm": "a, b", "nonce": "n"}


def test_parse_escapes() -> None:
    got = parse_digest_header(r'Digest username="ad\"min\\", realm="x\,y"')
    assert got == {"username": 'ad"min\\', "realm": "x,y"}


def test_parse_whitespace_case_and_empty_elements() -> None:
    got = parse_digest_header('  dIgEsT  ,Username = "a" ,, REALM=b ,  ')
    assert got == {"username": "a", "realm": "b"}


def test_parse_empty_quoted_value_and_no_params() -> None:
    assert parse_digest_header('Digest opaque="", nc=1') == {"opaque": "", "nc": "1"}
    assert parse_digest_header("Digest") == {}  # well-formed; lacks every required field


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWRtaW46cGFzcw==",
        "Bearer abc",
        "",
        'Digest username="admin',  # unterminated quote
        'Digest username="a\\',  # escape at the very end
        "Digest username",  # no '='
        "Digest username=",  # empty token
        'Digest username="a" realm="b"',  # missing comma
        'Digest username="a"x, realm="b"',  # garbage after a quoted value
        'Digest user name="a"',  # space inside a name
        'Digest username="a", username="b"',  # duplicate
        'Digest username=a"b',  # quote inside a token
        'Digest ="a"',  # empty name
    ],
)
def test_parse_rejects(header: str) -> None:
    assert parse_digest_header(header) is None


@given(st.text(max_size=200))
def test_parse_never_raises(text: str) -> None:
    parse_digest_header("Digest " + text)


@given(st.text(max_size=40), st.text(max_size=40))
def test_parse_roundtrips_quoted_values(a: str, b: str) -> None:
    def quote(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    assert parse_digest_header(f"Digest a={quote(a)}, b={quote(b)}") == {"a": a, "b": b}


# ---- digest math


def test_rfc7616_example_vectors() -> None:
    """RFC 7616 3.9.1: a correct response with a nonce not ours is STALE, a wrong one is not."""
    creds = Credentials.from_password("Circle of Life", username="Mufasa", realm="http-auth@example.org")
    verifier = DigestVerifier(lambda: creds, clock=FakeClock())
    vectors = {
        "MD5": "8ca523f5e9506fed4657c9700eebdbec",
        "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    }
    for algorithm, response in vectors.items():
        for resp, expected in ((response, Refusal.STALE), ("0" * 32, Refusal.WRONG_RESPONSE)):
            header = (
                'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html",'
                f' algorithm={algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",'
                ' nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth,'
                f' response="{resp}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
            )
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/dir/index.html",
                "raw_path": b"/dir/index.html",
                "query_string": b"",
                "headers": [(b"authorization", header.encode())],
            }
            assert verifier.authenticate(scope) is expected


def test_credentials_ha1() -> None:
    assert CREDS.username == "admin" and CREDS.realm == "homemeter"
    assert CREDS.ha1["MD5"] == hashlib.md5(f"admin:homemeter:{PASSWORD}".encode()).hexdigest()
    expected = hashlib.sha256(f"admin:homemeter:{PASSWORD}".encode()).hexdigest()
    assert CREDS.ha1["SHA-256"] == expected


# ---- middleware: challenge and success


async def test_challenge_without_credentials() -> None:
    h = Harness()
    reply = await h.request()
    assert reply.status == 401
    assert reply.json() == {"success": False, "error": "Authentication required"}
    assert reply.header("content-type") == "application/json"
    value = reply.header("www-authenticate")  # the MD5 one, after the same with SHA-256
    assert re.fullmatch(
        r'Digest realm="homemeter", qop="auth", algorithm=MD5, nonce="[^"]+", opaque="[0-9a-f]+"',
        value,
    )
    assert h.seen == []
    assert challenge_params(await h.request())["nonce"] != challenge_params(reply)["nonce"]


async def test_missing_or_other_scheme_is_not_a_failure() -> None:
    h = Harness()
    for _ in range(20):
        assert (await h.request()).status == 401
        assert (await h.request(auth="Basic YWRtaW46eA==")).status == 401
    assert h.limiter.retry_after("192.0.2.1") == 0


async def test_valid_md5_sets_user() -> None:
    h = Harness()
    nonce = await h.nonce()
    reply = await h.request(auth=digest(nonce))
    assert (reply.status, reply.body) == (200, b"ok")
    assert h.seen[-1]["user"] == "admin"


async def test_algorithm_absent_means_md5() -> None:
    h = Harness()
    nonce = await h.nonce()
    assert (await h.request(auth=digest(nonce, algorithm=None))).status == 200


async def test_sha256_accepted() -> None:
    h = Harness()
    nonce = await h.nonce()
    assert (await h.request(auth=digest(nonce, algorithm="SHA-256"))).status == 200


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
async def test_matches_requests_implementation(algorithm: str) -> None:
    """requests builds the header independently of our code (and of the helper above)."""
    h = Harness()
    nonce = await h.nonce()
    auth = requests.auth.HTTPDigestAuth(USERNAME, PASSWORD)
    auth.init_per_thread_state()
    auth._thread_local.chal = {
        "realm": REALM,
        "nonce": nonce,
        "qop": "auth",
        "algorithm": algorithm,
        "opaque": "o",
    }
    for _ in range(3):  # requests reuses the nonce with nc+1
        header = auth.build_digest_header("GET", "http://meter/api/v1/x?a=1&b=%20")
        assert header is not None
        assert (await h.request("/api/v1/x?a=1&b=%20", auth=header)).status == 200


@pytest.mark.parametrize(
    ("kwargs", "refusal"),
    [
        ({"password": "wrong password"}, Refusal.WRONG_RESPONSE),
        ({"username": "root"}, Refusal.WRONG_USER),
        ({"realm": "EnergyMe-Home"}, Refusal.WRONG_USER),
        ({"uri": "/api/v1/other"}, Refusal.WRONG_URI),
        ({"algorithm": "MD5-sess"}, Refusal.UNSUPPORTED),
        ({"method": "POST"}, Refusal.WRONG_RESPONSE),  # signed for POST, sent as GET
    ],
)
async def test_rejections_count_as_failures(kwargs: dict[str, Any], refusal: Refusal) -> None:
    h = Harness()
    nonce = await h.nonce()
    assert h.mw.backend.authenticate(_scope(digest(nonce, **kwargs))) is refusal
    reply = await h.request(auth=digest(nonce, nc=2, **kwargs))
    assert reply.status == 401
    assert "stale" not in challenge_params(reply)
    assert refusal.is_failure


async def test_wrong_uri_query_rejected() -> None:
    h = Harness()
    nonce = await h.nonce()
    header = digest(nonce, uri="/api/v1/x?index=1")
    assert (await h.request("/api/v1/x?index=2", auth=header)).status == 401
    header = digest(nonce, uri="/api/v1/x?index=2", nc=2)
    assert (await h.request("/api/v1/x?index=2", auth=header)).status == 200


async def test_qop_other_than_auth_rejected() -> None:
    h = Harness()
    nonce = await h.nonce()
    header = digest(nonce).replace("qop=auth", "qop=auth-int")
    assert h.mw.backend.authenticate(_scope(header)) is Refusal.UNSUPPORTED
    no_qop = digest(nonce).replace(", qop=auth", "")
    assert h.mw.backend.authenticate(_scope(no_qop)) is Refusal.MALFORMED


# ---- nonces


async def test_nonce_expiry_answers_stale_and_is_not_a_failure() -> None:
    h = Harness(ttl=300.0)
    nonce = await h.nonce()
    assert (await h.request(auth=digest(nonce, nc=1))).status == 200
    h.clock.advance(299.0)
    assert (await h.request(auth=digest(nonce, nc=2))).status == 200
    h.clock.advance(2.0)
    for nc in range(3, 13):
        reply = await h.request(auth=digest(nonce, nc=nc))
        assert reply.status == 401
        assert challenge_params(reply)["stale"] == "true"
    assert h.limiter.retry_after("192.0.2.1") == 0
    fresh = challenge_params(reply)["nonce"]
    assert (await h.request(auth=digest(fresh))).status == 200


async def test_unused_nonce_expires_too() -> None:
    h = Harness(ttl=10.0)
    nonce = await h.nonce()
    h.clock.advance(11.0)
    reply = await h.request(auth=digest(nonce))
    assert (reply.status, challenge_params(reply).get("stale")) == (401, "true")


async def test_foreign_nonce_stale_only_with_right_password() -> None:
    """A nonce from before a restart: the client knows the password, so it just retries."""
    h = Harness()
    other = Harness()
    old_nonce = await other.nonce()
    reply = await h.request(auth=digest(old_nonce))
    assert challenge_params(reply).get("stale") == "true"
    forged = (await h.nonce())[:-4] + "0000"
    assert h.mw.backend.authenticate(_scope(digest(forged))) is Refusal.STALE
    wrong = digest(old_nonce, password="not the password")
    assert h.mw.backend.authenticate(_scope(wrong)) is Refusal.WRONG_RESPONSE


async def test_nc_increasing_accepted_repeat_rejected() -> None:
    h = Harness()
    nonce = await h.nonce()
    for nc in (1, 2, 3, 10):
        assert (await h.request(auth=digest(nonce, nc=nc))).status == 200
    for nc in (10, 3, 1):
        reply = await h.request(auth=digest(nonce, nc=nc))
        assert reply.status == 401
        assert "stale" not in challenge_params(reply)
    assert h.mw.backend.authenticate(_scope(digest(nonce, nc=2))) is Refusal.REPLAY


async def test_nc_out_of_order_within_window() -> None:
    h = Harness()
    nonce = await h.nonce()
    for nc in (5, 4, 7, 6, 1):
        assert (await h.request(auth=digest(nonce, nc=nc))).status == 200, nc
    assert (await h.request(auth=digest(nonce, nc=100))).status == 200
    assert (await h.request(auth=digest(nonce, nc=100 - 63))).status == 200  # just inside
    assert (await h.request(auth=digest(nonce, nc=100 - 64))).status == 401  # too old
    assert (await h.request(auth=digest(nonce, nc=2**32 - 1))).status == 200  # big jump


async def test_count_overtaken_by_a_whole_window_is_stale_not_a_failure() -> None:
    """Parallel requests on one nonce can overtake a slow one by 64: the client just re-handshakes."""
    h = Harness()
    nonce = await h.nonce()
    assert (await h.request(auth=digest(nonce, nc=100))).status == 200
    for _ in range(10):  # more than the limiter's 5 failures
        reply = await h.request(auth=digest(nonce, nc=100 - 64))
        assert (reply.status, challenge_params(reply).get("stale")) == (401, "true")
    assert h.limiter.retry_after("192.0.2.1") == 0
    fresh = challenge_params(reply)["nonce"]
    assert (await h.request(auth=digest(fresh))).status == 200
    # A wrong password below the window is still a wrong password.
    wrong = digest(nonce, nc=1, password="not the password")
    assert h.mw.backend.authenticate(_scope(wrong)) is Refusal.WRONG_RESPONSE


async def test_many_request_targets_still_authenticate(monkeypatch: pytest.MonkeyPatch) -> None:
    """HA2 is cached per target; a full cache starts over instead of growing or going wrong."""
    monkeypatch.setattr(digest_auth, "MAX_CACHED_TARGETS", 2)
    h = Harness()
    nonce = await h.nonce()
    targets = ["/api/v1/a", "/api/v1/b?x=1", "/api/v1/c", "/api/v1/a", "/api/v1/b?x=1"]
    for nc, target in enumerate(targets, start=1):
        assert (await h.request(target, auth=digest(nonce, uri=target, nc=nc))).status == 200, target
    signed_for_a = digest(nonce, uri="/api/v1/a", nc=10)
    assert (await h.request("/api/v1/c", auth=signed_for_a)).status == 401


async def test_replayed_header_counts_as_failure() -> None:
    h = Harness()
    nonce = await h.nonce()
    header = digest(nonce)
    assert (await h.request(auth=header)).status == 200
    for _ in range(5):
        assert (await h.request(auth=header)).status == 401
    assert (await h.request(auth=digest(nonce, nc=2))).status == 429


async def test_each_challenge_nonce_is_separate() -> None:
    """Two clients challenged at the same instant both start at nc=1."""
    h = Harness()
    a, b = await h.nonce(), await h.nonce()
    assert a != b
    assert (await h.request(auth=digest(a))).status == 200
    assert (await h.request(auth=digest(b), client="192.0.2.2")).status == 200


async def test_nonce_table_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_auth, "MAX_TRACKED_NONCES", 3)
    h = Harness()
    nonces = [await h.nonce() for _ in range(6)]
    for nonce in nonces:
        assert (await h.request(auth=digest(nonce))).status == 200
    assert len(h.mw.backend.nonces) <= 3
    # An evicted nonce must not start over at nc=1: it is stale, so the replay fails.
    reply = await h.request(auth=digest(nonces[0]))
    assert (reply.status, challenge_params(reply).get("stale")) == (401, "true")
    assert (await h.request(auth=digest(nonces[-1], nc=2))).status == 200


async def test_expired_nonces_evicted() -> None:
    h = Harness(ttl=10.0)
    for _ in range(5):
        assert (await h.request(auth=digest(await h.nonce()))).status == 200
    assert len(h.mw.backend.nonces) == 5
    h.clock.advance(11.0)
    assert (await h.request(auth=digest(await h.nonce()))).status == 200
    assert len(h.mw.backend.nonces) == 1


# ---- limiter


async def test_limiter_blocks_after_five_failures_other_address_unaffected() -> None:
    h = Harness()
    nonce = await h.nonce()
    bad = "198.51.100.7"
    for nc in range(1, 6):
        reply = await h.request(auth=digest(nonce, nc=nc, password="guess"), client=bad)
        assert reply.status == 401
    reply = await h.request(auth=digest(nonce, nc=6), client=bad)  # even the right password
    assert reply.status == 429
    assert reply.header("retry-after") == "60"
    assert reply.json() == {"success": False, "error": "Too many failed logins, retry in 60 s"}
    assert (await h.request(client=bad)).status == 429  # also without credentials
    assert (await h.request(HEALTH, client=bad)).status == 200  # exempt: no auth, no limit
    good_nonce = await h.nonce()
    assert (await h.request(auth=digest(good_nonce))).status == 200
    assert h.seen[-1]["user"] == "admin"


async def test_block_expires_and_doubles_on_repeat() -> None:
    h = Harness()
    bad = "198.51.100.7"

    async def fail_five() -> None:
        nonce = await h.nonce()
        for nc in range(1, 6):
            reply = await h.request(auth=digest(nonce, nc=nc, password="guess"), client=bad)
            assert reply.status == 401

    await fail_five()
    h.clock.advance(30.0)
    assert (await h.request(client=bad)).header("retry-after") == "30"
    h.clock.advance(30.5)
    nonce = await h.nonce()
    assert (await h.request(auth=digest(nonce), client=bad)).status == 200  # block over
    await fail_five()
    assert (await h.request(client=bad)).header("retry-after") == "120"
    expected = [240, 480, 900, 900]
    for seconds in expected:
        h.clock.advance(h.limiter.retry_after(bad) + 1)
        await fail_five()
        assert (await h.request(client=bad)).header("retry-after") == str(seconds)
    h.clock.advance(900 + 901)  # quiet for longer than the longest block: forgiven
    await fail_five()
    assert (await h.request(client=bad)).header("retry-after") == "60"


def test_limiter_window() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(clock=clock)
    for _ in range(10):  # one failure every 15 s: never 5 within 60 s
        assert limiter.record_failure("a") == 0
        clock.advance(15.1)
    assert limiter.retry_after("a") == 0
    clock.advance(61.0)
    for _ in range(4):
        limiter.record_failure("a")
    limiter.record_success("a")  # a correct login clears the count
    for _ in range(4):
        assert limiter.record_failure("a") == 0
    assert limiter.retry_after("a") == 0
    assert limiter.record_failure("a") == 60
    assert limiter.retry_after("a") == 60


def test_limiter_memory_bounded() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(clock=clock)
    limiter.max_entries = 100
    for i in range(1000):
        limiter.record_failure(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) <= 100
    clock.advance(61.0)
    limiter.record_failure("10.9.9.9")
    assert len(limiter) == 1  # idle addresses are forgotten


# ---- other scope types, logging


async def test_websocket_refused_with_close() -> None:
    h = Harness()
    assert (await h.request(kind="websocket")).status == 1008


async def test_lifespan_passes_through() -> None:
    h = Harness()
    scope: Scope = {"type": "lifespan"}

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await h.mw(scope, receive, send)
    assert h.seen == [scope]


async def test_no_secrets_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = Harness()
    nonce = await h.nonce()
    wrong = digest(nonce, password="guess-the-password")
    right = digest(nonce, nc=2)
    for header in (wrong, wrong, right, right):
        await h.request(auth=header)
    for _ in range(4):
        await h.request(auth=digest(nonce, nc=9, password="guess-the-password"))
    assert "failed login" in caplog.text
    assert "blocked" in caplog.text
    for secret in (PASSWORD, "guess-the-password", CREDS.ha1["MD5"], CREDS.ha1["SHA-256"]):
        assert secret not in caplog.text
    for header in (wrong, right):
        assert re.search(r'response="(\w+)"', header)
        assert re.search(r'response="(\w+)"', header).group(1) not in caplog.text  # type: ignore[union-attr]
        assert header not in caplog.text


def _scope(header: str, target: str = "/api/v1/x") -> Scope:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"authorization", header.encode())],
        "client": ("192.0.2.9", 1),
    }


# ---- credentials file


def test_credentials_file_has_no_password_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    store = CredentialStore(path)
    creds = store.set_password(PASSWORD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    assert "horse" not in text
    doc = json.loads(text)
    assert set(doc["ha1"]) == {"MD5", "SHA-256"}
    assert doc["ha1"]["MD5"] == creds.ha1["MD5"]
    assert os.listdir(tmp_path) == ["credentials.json"]  # no temp file left behind
    assert CredentialStore(path).load() == creds


def test_check_password(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "c.json")
    assert store.check_password(PASSWORD) is False  # nothing stored yet
    store.set_password(PASSWORD)
    fresh = CredentialStore(tmp_path / "c.json")
    assert fresh.check_password(PASSWORD) is True
    assert fresh.check_password(PASSWORD + " ") is False
    fresh.set_password("another password")
    assert fresh.check_password("another password") is True
    assert fresh.current().ha1["MD5"] != CREDS.ha1["MD5"]


@pytest.mark.parametrize("length", [0, 1, 7, 65, 200])
def test_password_length_rule_rejects(tmp_path: Path, length: int) -> None:
    store = CredentialStore(tmp_path / "c.json")
    with pytest.raises(ConfigError, match="8 to 64 characters"):
        store.set_password("x" * length)
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("password", ["x" * 8, "é" * 64, "with:colon and spaces"])
def test_password_length_rule_accepts(tmp_path: Path, password: str) -> None:
    creds = CredentialStore(tmp_path / "c.json").set_password(password)
    assert creds == Credentials.from_password(password)


def test_generate_password() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 16
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", password)


def test_load_missing_corrupted_and_loose_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    store = CredentialStore(path)
    assert store.load() is None
    with pytest.raises(StoreError):
        store.current()
    creds, shown = store.load_or_create()
    assert shown is not None and store.check_password(shown)
    assert store.load_or_create() == (creds, None)
    path.chmod(0o644)
    assert CredentialStore(path).load() == creds
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for bad in (b"{", b"[]", b'{"username": "admin", "realm": "homemeter", "ha1": {"MD5": "0x"}}'):
        path.write_bytes(bad)
        with pytest.raises(StoreCorrupted):
            CredentialStore(path).load()


_HEADER_CHARS = st.sampled_from([*'aBz09=", \t\\,x-', "username", "nc", "=", '"', ", "])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_HEADER_CHARS, max_size=40).map("".join))
def test_fast_parse_agrees_with_the_general_scan_on_any_text(rest: str) -> None:
    """The one-call path for plain headers never answers differently from the general scan."""
    header = "Digest " + rest
    assert parse_digest_header(header) == _parse_params(header.strip().partition(" ")[2])


_VALUE = st.text(alphabet=st.sampled_from(list('ab1/?=&,. "\\')), max_size=12)


_NAME = st.sampled_from(["username", "Realm", "nc", "uri", "qop"])
_SEPARATOR = st.sampled_from([",", ", ", " ,", ",,", ",\t"])


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(_NAME, _VALUE, st.booleans(), _SEPARATOR), max_size=8))
def test_fast_parse_agrees_with_the_general_scan_on_header_like_lists(
    params: list[tuple[str, str, bool, str]],
) -> None:
    parts = []
    for name, value, quote, sep in params:
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if quote else value
        parts.append(f"{name}={text}{sep}")
    header = "Digest " + "".join(parts)
    assert parse_digest_header(header) == _parse_params(header.strip().partition(" ")[2])
