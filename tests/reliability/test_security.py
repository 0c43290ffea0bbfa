"""The security review, as tests: authentication everywhere but health, secrets kept secret, private
files, and the systemd unit's hardening."""

from __future__ import annotations

import io
import re
import shutil
import socket
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from homemeter.api.web import STATIC_DIR
from tests.reliability.service import Homemeter, running, write_config

SECRETS = {
    "mqtt": "mqtt-secret-Pa55word",
    "influx_password": "influx-secret-Pa55",
    "influx_token": "influx-token-0123456789abcdef",
    "metrics_token": "metrics-token-0123456789abcdef",
}
PAGES = (
    "/",
    "/channels",
    "/sources",
    "/integrations",
    "/system",
    "/logs",
    "/channel",
    "/calibration",
    "/info",
    "/configuration",
    "/update",
    "/log",
    "/openapi.json",
    "/swagger.yaml",
    "/docs",
    "/swagger-ui",
    "/swagger-ui/static/swagger-ui.css",
    "/metrics",
    "/nope",
    "/api/v1/nope",
    "/static/nope.js",
)
# Ways around an exact-path exemption of /api/v1/health.
TRICKS = ("/api/v1/health/../system/info", "//api/v1/system/info", "/api/v1/HEALTH", "/api/v1/health/",
          "/api/v1/health%2F..%2Fsystem%2Finfo", "/api/v1/./system/info")  # fmt: skip
UNIT = Path(__file__).resolve().parents[2] / "packaging" / "homemeter.service"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homemeter]:
    data = tmp_path_factory.mktemp("security") / "data"
    write_config(data)
    with running(data) as service:
        _store_secrets(service)
        yield service


def _store_secrets(svc: Homemeter) -> None:
    changes = {
        "/api/v1/custom-mqtt/config": {
            "useCredentials": True,
            "username": "meter",
            "password": SECRETS["mqtt"],
        },
        "/api/v1/influxdb/config": {"password": SECRETS["influx_password"], "token": SECRETS["influx_token"]},
        "/api/v1/metrics/config": {"auth": "bearer", "token": SECRETS["metrics_token"]},
    }
    for path, body in changes.items():
        r = svc.request("PATCH", path, json=body)
        assert r.status_code == 200, (path, r.text)


def _operations(svc: Homemeter) -> list[tuple[str, str]]:
    doc = svc.get("/openapi.json").json()
    ops = []
    for path, item in doc["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        ops += [
            (method.upper(), concrete)
            for method in item
            if method in ("get", "put", "post", "patch", "delete")
        ]
    return ops


def _raw_status(svc: Homemeter, method: str, target: str) -> int:
    """The status of a request sent byte for byte (no client-side path normalisation)."""
    with socket.create_connection(("127.0.0.1", svc.http_port), timeout=5) as s:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode())
        head = s.recv(4096)
    return int(head.split(b" ", 2)[1])


def test_nothing_answers_without_auth_but_health(svc: Homemeter) -> None:
    ops = _operations(svc)
    assert len(ops) > 50
    answered = {f"{m} {p}": _raw_status(svc, m, p) for m, p in ops}
    assert answered.pop("GET /api/v1/health") == 200
    assert set(answered.values()) == {401}, {k: v for k, v in answered.items() if v != 401}


def test_pages_assets_and_path_tricks_need_auth(svc: Homemeter) -> None:
    assets = [f"/static/{p.relative_to(STATIC_DIR)}" for p in STATIC_DIR.rglob("*") if p.is_file()]
    targets = [*PAGES, *assets[:40], *TRICKS]
    answered = {(m, t): _raw_status(svc, m, t) for t in targets for m in ("GET", "HEAD", "POST")}
    assert all(v in (401, 400) for v in answered.values()), {
        k: v for k, v in answered.items() if v not in (401, 400)
    }


def test_secrets_never_in_get_answers(svc: Homemeter) -> None:
    gets = [p for m, p in _operations(svc) if m == "GET" and "/stream" not in p]
    for path in gets:
        r = svc.get(path) if path != "/metrics" else requests.get(svc.url + path, timeout=5,
                    headers={"Authorization": f"Bearer {SECRETS['metrics_token']}"})  # fmt: skip
        for name, secret in SECRETS.items():
            assert secret not in r.text, f"{name} in GET {path}"


def test_secrets_in_backups_only_when_asked(svc: Homemeter) -> None:
    masked = svc.get("/api/v1/backup/configuration").text
    assert not [n for n, s in SECRETS.items() if s in masked]
    revealed = svc.get("/api/v1/backup/configuration?secrets=true").text
    assert all(s in revealed for s in SECRETS.values())  # asked for explicitly
    with tarfile.open(fileobj=io.BytesIO(svc.get("/api/v1/backup/filesystem").content)) as archive:
        assert "credentials.json" not in archive.getnames()
        for member in archive.getmembers():
            if member.isfile():
                content = archive.extractfile(member).read()  # type: ignore[union-attr]
                assert not [n for n, s in SECRETS.items() if s.encode() in content], member.name


def test_secrets_never_in_logs(svc: Homemeter) -> None:
    svc.request("PATCH", "/api/v1/custom-mqtt/config", json={"password": SECRETS["mqtt"] + "x"})
    svc.request(
        "POST", "/api/v1/auth/change-password", json={"currentPassword": "wrong", "newPassword": "x" * 12}
    )
    logs = svc.get("/api/v1/logs").text + svc.log
    assert not [n for n, s in SECRETS.items() if s in logs]
    credentials = (svc.data_dir / "credentials.json").read_text()
    hashes = re.findall(r"[0-9a-f]{32,64}", credentials)
    assert hashes and not [h for h in hashes if h in logs]


def test_credential_and_config_files_are_private(svc: Homemeter) -> None:
    for name in ("config.json", "credentials.json"):
        mode = stat.S_IMODE((svc.data_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {mode:o}"
    assert not stat.S_IMODE(svc.data_dir.stat().st_mode) & 0o002, "data directory writable by others"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_is_hardened() -> None:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    assert exposure <= 2.0, out
    unit = UNIT.read_text()
    for option in ("NoNewPrivileges=true", "ProtectSystem=strict", "PrivateTmp=true", "ProtectHome=true",
                   "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "SystemCallFilter=@system-service",
                   "UMask=0077"):  # fmt: skip
        assert option in unit
