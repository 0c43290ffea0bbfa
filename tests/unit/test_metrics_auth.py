"""The bearer and Basic checks of `/metrics`: what counts as a failed login and what does not."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from homemeter.api.metrics_auth import Verdict, check_basic, check_bearer
from homemeter.config.metrics import MetricsConfig

TOKEN = "0123456789abcdef-token"


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (b"Bearer " + TOKEN.encode(), Verdict.OK),
        (b"bearer  " + TOKEN.encode(), Verdict.OK),  # the scheme is case-insensitive (RFC 9110 11.1)
        (b"Bearer " + TOKEN.encode() + b"x", Verdict.WRONG),
        (b"Bearer ", Verdict.WRONG),
        (b"", Verdict.MISSING),  # a client's first try: not a failed login
        (b'Digest username="admin"', Verdict.MISSING),  # another scheme never passes
    ],
)
def test_bearer(header: bytes, verdict: Verdict) -> None:
    assert check_bearer(header, TOKEN) is verdict


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (basic("prom", "pa:ss wörd"), Verdict.OK),  # the password may hold ':' and any UTF-8
        (basic("prom", "pa:ss word"), Verdict.WRONG),
        (basic("Prom", "pa:ss wörd"), Verdict.WRONG),
        (b"Basic " + base64.b64encode(b"prom"), Verdict.WRONG),  # no colon
        (b"Basic not*base64", Verdict.WRONG),
        (b"Bearer " + TOKEN.encode(), Verdict.MISSING),
    ],
)
def test_basic(header: bytes, verdict: Verdict) -> None:
    assert check_basic(header, "prom", "pa:ss wörd") is verdict


def test_the_chosen_mode_needs_its_credentials_and_only_those() -> None:
    with pytest.raises(ValidationError, match="token: auth 'bearer' needs a token of at least 16"):
        MetricsConfig.model_validate({"auth": "bearer", "token": "short"})
    with pytest.raises(ValidationError, match="visible ASCII"):
        MetricsConfig.model_validate({"auth": "bearer", "token": "spaces are not allowed here"})
    with pytest.raises(ValidationError, match="password: auth 'basic' needs at least 8"):
        MetricsConfig.model_validate({"auth": "basic", "password": ""})
    with pytest.raises(ValidationError, match="username: must not contain ':'"):
        MetricsConfig.model_validate({"auth": "basic", "username": "a:b", "password": "long enough"})
    with pytest.raises(ValidationError):
        MetricsConfig.model_validate({"auth": "Bearer", "token": TOKEN})  # modes are exact
    # Back to digest: a stored token stays for later, unchecked.
    kept = MetricsConfig.model_validate({"auth": "digest", "token": TOKEN})
    assert kept.token.get_secret_value() == TOKEN
