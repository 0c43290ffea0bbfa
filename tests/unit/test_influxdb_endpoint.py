"""The write request per version, and what each answer of the server means for the points."""

from __future__ import annotations

import email.utils
import ssl
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from homemeter.config.influxdb import InfluxDbConfig
from homemeter.errors import ConfigRejected
from homemeter.integrations.influxdb.endpoint import Verdict, judge, retry_after, target
from homemeter.integrations.influxdb.writer import backoff
from homemeter.timestamps import duration


def test_v1_request_is_the_devices_with_basic_auth_always_sent() -> None:
    cfg = InfluxDbConfig(version=1, server="influx.lan", port=8086, database="energyme-home")
    t = target(cfg)
    assert str(t.url) == "http://influx.lan:8086/write?db=energyme-home"
    assert t.headers["Authorization"] == "Basic Og=="  # empty credentials, as the device sends them
    assert t.headers["Content-Type"].startswith("text/plain")
    creds = cfg.model_copy(update={"username": "writer", "password": SecretStr("s3cret")})
    assert target(creds).headers["Authorization"] == "Basic d3JpdGVyOnMzY3JldA=="


def test_v2_request_has_token_precision_and_encoded_query() -> None:
    cfg = InfluxDbConfig(version=2, server="::1", port=8181, organization="my org&co", bucket="a/b",
                         token=SecretStr("tok"), useSsl=True)  # fmt: skip
    t = target(cfg)
    assert str(t.url) == "https://[::1]:8181/api/v2/write?org=my+org%26co&bucket=a%2Fb&precision=ns"
    assert t.headers["Authorization"] == "Token tok"


def test_certificates_are_checked_by_default(tmp_path: Path) -> None:
    https = InfluxDbConfig(useSsl=True)
    verify = target(https).verify
    assert isinstance(verify, ssl.SSLContext) and verify.verify_mode is ssl.CERT_REQUIRED
    assert verify.check_hostname
    assert target(https.model_copy(update={"verifySsl": False})).verify is False
    with pytest.raises(ConfigRejected, match=r"^caFile: cannot use .*missing\.pem"):
        target(https.model_copy(update={"caFile": str(tmp_path / "missing.pem")}))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigRejected, match=r"^caFile: "):
        target(https.model_copy(update={"caFile": str(garbage)}))


def answer(code: int, body: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(code, text=body, headers=headers)


@pytest.mark.parametrize(("code", "verdict"), [
    (204, Verdict.WRITTEN), (200, Verdict.WRITTEN),
    (400, Verdict.REJECTED), (422, Verdict.REJECTED), (413, Verdict.TOO_LARGE),
    (401, Verdict.RETRY), (403, Verdict.RETRY), (404, Verdict.RETRY), (405, Verdict.RETRY),
    (301, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY), (503, Verdict.RETRY),
])  # fmt: skip
def test_verdicts(code: int, verdict: Verdict) -> None:
    assert judge(answer(code)).verdict is verdict


def test_the_servers_reason_is_kept() -> None:
    v1 = judge(answer(404, '{"error":"database not found: \\"house\\""}'))
    assert (v1.code, v1.text) == (404, 'database not found: "house"')
    v2 = judge(answer(401, '{"code":"unauthorized","message":"unauthorized access"}'))
    assert v2.text == "unauthorized access"
    assert judge(answer(502, "<html>\n  Bad   gateway</html>")).text == "<html> Bad gateway</html>"
    assert judge(answer(500)).text == "Internal Server Error"
    assert len(judge(answer(400, "x" * 5000)).text) == 200


def test_retry_after_seconds_or_date() -> None:
    assert judge(answer(429, **{"Retry-After": "7"})).retry_after == 7.0
    assert judge(answer(503)).retry_after is None
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    later = retry_after(soon)
    assert later is not None and 25 <= later <= 31
    assert retry_after("999999") == 3600.0
    assert retry_after("soon") is None


def test_backoff_and_the_devices_duration_words() -> None:
    assert [backoff(n) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert [duration(s) for s in (0.25, 1, 59, 80, 3600, 86_399, 172_800)] == [
        "250 ms", "1 s", "59 s", "1 min", "1 h", "23 h", "2 d"
    ]  # fmt: skip
