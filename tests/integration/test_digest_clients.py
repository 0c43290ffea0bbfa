"""The Digest clients users actually have, against the live service: requests (Home Assistant),
httpx, curl --digest; and the failed-login limiter as a client sees it, per address."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.integration.conftest import PASSWORD, RunningService

PATH = "/api/v1/ade7953/meter-values"


def curl(service: RunningService, password: str, interface: str = "127.0.0.1") -> tuple[int, str]:
    """(status, headers) of one curl --digest call from a given loopback source address."""
    out = subprocess.run(
        [
            "curl", "-s", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}", "--digest",
            "-u", f"admin:{password}", "--interface", interface, f"{service.url}{PATH}",
        ],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout  # fmt: skip
    return int(out[-3:]), out[:-3]


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by make test")


def test_requests_session_reuses_one_nonce(service: RunningService) -> None:
    session = requests.Session()
    session.auth = HTTPDigestAuth("admin", PASSWORD)
    statuses = [session.get(f"{service.url}{PATH}", timeout=5).status_code for _ in range(5)]
    assert statuses == [200] * 5
    # One handshake, then nc=2,3,... on the same nonce: no 401 after the first request.
    assert session.auth._thread_local.num_401_calls == 1  # type: ignore[attr-defined]


def test_httpx_digest_auth(service: RunningService) -> None:
    with httpx.Client(auth=httpx.DigestAuth("admin", PASSWORD), timeout=5) as client:
        for _ in range(3):
            response = client.get(f"{service.url}{PATH}")
            assert response.status_code == 200
            # httpx takes the first challenge: SHA-256 (requests and curl answer the MD5 one).
            assert "algorithm=SHA-256" in response.request.headers["authorization"]
        assert client.get(f"{service.url}{PATH}?index=0").json()["voltage"] > 0


@needs_curl
def test_curl_digest(service: RunningService) -> None:
    assert curl(service, PASSWORD)[0] == 200


@needs_curl
def test_failed_logins_are_limited_per_address(service: RunningService) -> None:
    statuses = [curl(service, "wrong password", "127.0.0.3")[0] for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    status, headers = curl(service, PASSWORD, "127.0.0.3")
    assert status == 429, "blocked even with the right password until the block ends"
    assert "retry-after:" in headers.lower()
    assert curl(service, PASSWORD, "127.0.0.4")[0] == 200, "another address is not slowed"


def test_the_401_challenge_offers_digest_with_qop_auth(service: RunningService) -> None:
    response = requests.get(f"{service.url}{PATH}", timeout=5)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Digest ") and 'qop="auth"' in challenge
    # Two challenges on one nonce (joined by the client library): SHA-256 first, MD5 last.
    assert challenge.index("algorithm=SHA-256") < challenge.index("algorithm=MD5")
    assert response.json()["success"] is False  # JSON body, like every other error
