"""HTTP Digest authentication (RFC 7616, qop=auth, MD5 or SHA-256) as pure ASGI middleware.

The shape follows Starlette's auth: a backend (`DigestVerifier.authenticate`) returns the user or
why it refused, and the middleware puts the user in `scope["user"]` or sends the refusal.

Nonces are stateless, `<issued ms>.<sequence>.<MAC>` signed with a per-process key, and are
valid for `nonce_ttl` s: requests, httpx and the Home Assistant integration reuse one nonce with
nc+1 per call, so a nonce must serve many requests. An expired or foreign nonce (e.g. from before
a restart) with a correct response gets `stale=true`: the client retries without asking for the
password. Replay state is kept only for nonces that authenticated: per nonce the highest nc and a
64-wide bitmask below it (the IPsec anti-replay window, RFC 4303 3.4.3), so requests of one
client that overtake each other on parallel connections still pass but no nc is accepted twice;
a count that fell below the window gets `stale=true` (the client re-handshakes, no failed login).

Both the challenge and the success path run on every poll (Home Assistant may handshake every
10 s), so they avoid per-request set-up: HA1 is precomputed, HA2 is cached per request target,
the header is parsed by one compiled pattern and the challenge is one formatted string.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import itertools
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from homemeter.api.rate_limit import FailureLimiter
from homemeter.store.credentials import HASHES, Credentials

__all__ = [
    "DigestAuthMiddleware",
    "DigestVerifier",
    "FailureLimiter",
    "NonceBook",
    "Refusal",
    "parse_digest_header",
]

log = logging.getLogger(__name__)

NC_WINDOW = 64  # nonce counts remembered below the highest one, per nonce
_NC_MASK = (1 << NC_WINDOW) - 1
MAX_TRACKED_NONCES = 4096  # Home Assistant polling every 10 s with a 300 s TTL holds ~30
MAX_HEADER_LENGTH = 4096
MAX_CACHED_TARGETS = 256  # HA2 values cached per (algorithm, method, uri)
MAX_NONCE_LENGTH = 64  # ours are ~45 characters; longer ones are not worth a MAC computation

_SPACE = " \t"
# One list element per match (RFC 9110 5.6.1, empty elements allowed): name = token or
# quoted-string, then a comma or the end; or only separators up to the end (name group None).
# Each match is one C call: a hand-written scanner cost 15 us per header, this 11 us for a
# typical 10-parameter header (plain headers take `_PLAIN_PARAM`'s single call: 7 us).
# `[^=]*` is greedy so a long header without "=" fails in one pass, not quadratically; the
# quoted-string is the unrolled loop `normal* (escape normal*)*`, not a per-character alternation.
_PARAM = re.compile(
    r'[ \t,]*(?:\Z|([^=]*)=[ \t]*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^ \t,"]+))[ \t]*(?:,|\Z))', re.S
)
_ESCAPE = re.compile(r"\\(.)", re.S)
# The common case of `_PARAM`, as one findall: a name of letters, `=`, then a token or a quoted
# string without escapes; group 1 is the whole element, so the elements' lengths show any gap.
_PLAIN_PARAM = re.compile(r'([ \t,]*([A-Za-z]+)=(?:"([^"\\]*)"|([^ \t,"]+))[ \t]*(?:,|\Z))')
# RFC 9110 5.6.2 token characters: what a parameter name may consist of.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")

_UNAUTHORIZED_BODY = b'{"success":false,"error":"Authentication required"}'
_JSON = (b"content-type", b"application/json")


class Refusal(enum.Enum):
    """Why a request was not authenticated; `is_failure`: counts as a failed login."""

    MISSING = "no Digest credentials"  # the normal first request of every handshake
    STALE = "stale or unknown nonce"  # right password, old nonce: the client retries on its own
    MALFORMED = "malformed Authorization header"
    UNSUPPORTED = "unsupported algorithm or qop"
    WRONG_USER = "wrong username or realm"
    WRONG_URI = "uri does not match the request target"
    WRONG_RESPONSE = "wrong response (password)"
    REPLAY = "nonce count already used"

    @property
    def is_failure(self) -> bool:
        return self is not Refusal.MISSING and self is not Refusal.STALE


def parse_digest_header(value: str) -> dict[str, str] | None:
    """Parameters of a `Digest` credentials header (names lowercased), or None if not parseable.

    Quoted values may contain commas and backslash escapes (RFC 9110 5.6.4), so a split on commas
    is wrong; a duplicated parameter makes the header invalid rather than ambiguous.
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    # What clients send (letters = plain token or escape-free quoted string, comma-separated) in
    # one C call; the elements found must tile `rest` exactly, else the general scan decides.
    # 11 us -> ~4 us per header, the largest Python cost of an authorised poll (bench/README.md).
    items = _PLAIN_PARAM.findall(rest)
    if sum(len(item[0]) for item in items) == len(rest):
        params = {name.lower(): quoted or token for _, name, quoted, token in items}
        return params if len(params) == len(items) else None  # a duplicated parameter
    return _parse_params(rest)


def _parse_params(rest: str) -> dict[str, str] | None:
    """The general scan: any RFC 9110 list of token or quoted-string parameters."""
    params: dict[str, str] = {}
    match = _PARAM.match
    pos = 0
    while True:
        m = match(rest, pos)
        if m is None:
            return None
        raw_name, quoted, token = m.groups()
        if raw_name is None:
            return params
        name = raw_name.rstrip(_SPACE).lower()
        if not name or not _TCHAR.issuperset(name) or name in params:
            return None
        if token is not None:
            params[name] = token
        elif "\\" in quoted:
            params[name] = _ESCAPE.sub(r"\1", quoted)
        else:
            params[name] = quoted
        pos = m.end()


class NonceBook:
    """Issues signed, time-limited nonces and remembers which nonce counts were used."""

    def __init__(self, *, ttl: float, clock: Callable[[], float], key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)
        self._ttl_ms = int(ttl * 1000)
        self._clock = clock
        # The sequence number makes every challenge's nonce unique, so two clients challenged in
        # the same millisecond never share a nonce (and collide on nc=1).
        self._seq = itertools.count(1)
        # nonce -> [highest nc, bitmask of used nc (bit k = highest - k), issued ms, sequence];
        # insertion order is roughly issue order, so expired entries collect at the front.
        # OrderedDict: a plain dict's first key is found past every slot deleted at the front,
        # which made eviction cost 3 % of a handshake-every-request load (bench/http.py).
        self._seen: OrderedDict[str, list[int]] = OrderedDict()
        self._evicted_up_to = 0  # untracked nonces with a sequence <= this were dropped: stale

    def issue(self) -> str:
        body = f"{int(self._clock() * 1000):x}.{next(self._seq):x}"
        return f"{body}.{self._mac(body)}"

    def use(self, nonce: str, nc: int) -> Refusal | None:
        """Record the use of `nonce` with count `nc`; None if fresh, else STALE or REPLAY.

        REPLAY only for a count known to be used; a count below the window cannot be told apart
        from an unused one, so it is STALE.
        """
        now_ms = int(self._clock() * 1000)
        entry = self._seen.get(nonce)
        if entry is None:  # first use: verify the signature once, later uses hit the table
            issued = self._verify(nonce)
            if issued is None:
                return Refusal.STALE
            issued_ms, seq = issued
            if not 0 <= now_ms - issued_ms <= self._ttl_ms or seq <= self._evicted_up_to:
                return Refusal.STALE
            self._evict(now_ms)
            self._seen[nonce] = [nc, 1, issued_ms, seq]
            return None
        if now_ms - entry[2] > self._ttl_ms:
            return Refusal.STALE
        top, used = entry[0], entry[1]
        if nc > top:
            shift = nc - top
            entry[0] = nc
            entry[1] = ((used << shift) | 1) & _NC_MASK if shift < NC_WINDOW else 1
            return None
        behind = top - nc
        if behind >= NC_WINDOW:
            # Overtaken by a whole window on parallel connections (or an old capture): the count
            # may be unused, the response was right, so the client gets a fresh nonce, no strike.
            return Refusal.STALE
        if (used >> behind) & 1:
            return Refusal.REPLAY
        entry[1] = used | (1 << behind)
        return None

    def __len__(self) -> int:
        return len(self._seen)

    def _mac(self, body: str) -> str:
        # Keyed BLAKE2b is a MAC (RFC 7693) and one C call, cheaper than hmac.new on the hot path.
        return hashlib.blake2b(body.encode(), key=self._key, digest_size=16).hexdigest()

    def _verify(self, nonce: str) -> tuple[int, int] | None:
        """(issued ms, sequence) of one of our nonces, or None for anything else."""
        if len(nonce) > MAX_NONCE_LENGTH:
            return None
        body, dot, mac = nonce.rpartition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        issued, _, seq = body.partition(".")
        try:
            return int(issued, 16), int(seq, 16)
        except ValueError:
            return None

    def _evict(self, now_ms: int) -> None:
        seen = self._seen
        while seen:
            nonce = next(iter(seen))
            entry = seen[nonce]
            if now_ms - entry[2] <= self._ttl_ms:
                if len(seen) < MAX_TRACKED_NONCES:
                    return
                # Dropping a live nonce would forget its used counts; make it stale instead.
                self._evicted_up_to = max(self._evicted_up_to, entry[3])
            del seen[nonce]


class DigestVerifier:
    """The auth backend: `authenticate(scope)` gives the username or the Refusal."""

    def __init__(
        self,
        credentials: Callable[[], Credentials],
        *,
        nonce_ttl: float = 300.0,
        clock: Callable[[], float],
    ) -> None:
        self._credentials = credentials
        self.nonces = NonceBook(ttl=nonce_ttl, clock=clock)
        # Clients must echo opaque back (RFC 7616 3.3); it protects nothing, the nonce is signed.
        self._opaque = os.urandom(16).hex()
        self._realm = ""
        self._heads: tuple[str, ...] = ()
        # HA2 depends only on the request (pollers repeat the same few), not on the password.
        self._ha2: dict[tuple[str, str, str], str] = {}

    def challenges(self, *, stale: bool = False) -> tuple[bytes, bytes]:
        """The WWW-Authenticate values: SHA-256 first, then MD5, on one shared nonce.

        Order matters: httpx and browsers take the first challenge they support (SHA-256), while
        requests (the Home Assistant integration) and curl merge or overwrite the parameters of
        all Digest challenges, so the last one, MD5, is what they answer.
        """
        realm = self._credentials().realm
        if realm != self._realm:
            self._realm = realm
            self._heads = tuple(
                f'Digest realm="{realm}", qop="auth", algorithm={alg}, nonce="' for alg in ("SHA-256", "MD5")
            )
        tail = f'{self.nonces.issue()}", opaque="{self._opaque}' + ('", stale=true' if stale else '"')
        return (self._heads[0] + tail).encode(), (self._heads[1] + tail).encode()

    def authenticate(self, scope: Scope) -> str | Refusal:
        """Check the Authorization header of an HTTP or WebSocket scope."""
        header = _authorization(scope)
        if header is None or header[:7].lower() != b"digest ":
            return Refusal.MISSING  # another scheme (Basic) can never pass: same as none
        if len(header) > MAX_HEADER_LENGTH:
            return Refusal.MALFORMED
        # latin-1 maps bytes 1:1, so re-encoding below hashes exactly what the client hashed.
        params = parse_digest_header(header.decode("latin-1"))
        if params is None:
            return Refusal.MALFORMED
        try:
            username, realm, nonce, uri = (
                params["username"],
                params["realm"],
                params["nonce"],
                params["uri"],
            )
            response, qop, nc_hex, cnonce = (
                params["response"],
                params["qop"],
                params["nc"],
                params["cnonce"],
            )
        except KeyError:
            return Refusal.MALFORMED  # including RFC 2069 (no qop) and userhash/username*
        algorithm = params.get("algorithm", "MD5").upper()
        hash_fn = HASHES.get(algorithm)
        if hash_fn is None or qop != "auth":
            return Refusal.UNSUPPORTED
        creds = self._credentials()
        if username != creds.username or realm != creds.realm:
            return Refusal.WRONG_USER
        if uri != _request_target(scope):
            return Refusal.WRONG_URI
        if len(nc_hex) != 8:
            return Refusal.MALFORMED
        try:
            nc = int(nc_hex, 16)
        except ValueError:
            return Refusal.MALFORMED
        method = scope.get("method", "GET")  # WebSocket handshakes are GET requests
        ha2 = self._ha2.get((algorithm, method, uri)) or self._new_ha2(algorithm, method, uri)
        text = f"{creds.ha1[algorithm]}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}"
        expected = hash_fn(text.encode("latin-1")).hexdigest()
        if not hmac.compare_digest(expected.encode(), response.lower().encode("latin-1")):
            return Refusal.WRONG_RESPONSE
        # Checked after the response so that STALE implies the right password (RFC 7616 3.3).
        refusal = self.nonces.use(nonce, nc)
        return username if refusal is None else refusal

    def _new_ha2(self, algorithm: str, method: str, uri: str) -> str:
        if len(self._ha2) >= MAX_CACHED_TARGETS:
            self._ha2.clear()
        ha2: str = HASHES[algorithm](f"{method}:{uri}".encode("latin-1")).hexdigest()
        self._ha2[(algorithm, method, uri)] = ha2
        return ha2


class DigestAuthMiddleware:
    """Lets a request through with `scope["user"]` set, or answers 401 (challenge) or 429.

    `exempt(scope)` routes skip both auth and the limiter (the device does that for health).
    The nonce clock is the limiter's clock, so one injected clock drives both in tests.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        credentials: Callable[[], Credentials],
        exempt: Callable[[Scope], bool],
        limiter: FailureLimiter,
        nonce_ttl: float = 300.0,
    ) -> None:
        self.app = app
        self.exempt = exempt
        self.limiter = limiter
        self.backend = DigestVerifier(credentials, nonce_ttl=nonce_ttl, clock=limiter.clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or self.exempt(scope) or await self.admit(scope, send):
            await self.app(scope, receive, send)

    async def admit(self, scope: Scope, send: Send) -> bool:
        """True with `scope["user"]` set, or False once the 401 or 429 has been sent.

        Also the gate of routes served in front of this middleware (the meter-values fast path).
        """
        client = scope.get("client")
        address: str = client[0] if client else ""
        wait = self.limiter.retry_after(address)
        if wait:
            await self.on_error(scope, send, None, wait)
            return False
        result = self.backend.authenticate(scope)
        if isinstance(result, str):
            self.limiter.record_success(address)
            scope["user"] = result
            return True
        if result.is_failure:
            # The reason only: never the header, which holds a password-equivalent response.
            log.debug("failed login from %s: %s", address, result.value)
            self.limiter.record_failure(address)
        await self.on_error(scope, send, result, 0)
        return False

    async def on_error(self, scope: Scope, send: Send, refusal: Refusal | None, retry_after: int) -> None:
        """Send the refusal: 429 while blocked (`refusal` None), else 401 with a challenge."""
        if scope["type"] == "websocket":
            # A close before accept becomes an HTTP 403; a WebSocket cannot carry a challenge.
            await send({"type": "websocket.close", "code": 1008})
            return
        if refusal is None:
            body = b'{"success":false,"error":"Too many failed logins, retry in %d s"}' % retry_after
            extra = [(b"retry-after", b"%d" % retry_after)]
            status = 429
        else:
            body = _UNAUTHORIZED_BODY
            challenges = self.backend.challenges(stale=refusal is Refusal.STALE)
            extra = [(b"www-authenticate", value) for value in challenges]
            status = 401
        headers = [_JSON, (b"content-length", b"%d" % len(body)), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _authorization(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value  # type: ignore[no-any-return]
    return None


def _request_target(scope: Scope) -> str:
    """The request target as the client sent it (percent-encoding kept), as in Digest's uri."""
    raw: bytes | None = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path
