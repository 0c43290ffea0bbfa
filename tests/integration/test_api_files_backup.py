"""Files, Backup and Restore over real HTTP: the file area is a sandbox, backups hold no login and
no secret in clear, restores are validated whole and apply live (configuration, files, energy)."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from homemeter.config.app import AppConfig
from homemeter.config.secrets import PLACEHOLDER
from homemeter.store.credentials import CREDENTIALS_FILE
from tests.integration.conftest import PASSWORD, RunningService, module_service

API = "/api/v1"
CSV = b"timestamp,channel,active_imported,active_exported\n2025-11-25T13:00:00.000Z,0,123456,789\n"
SECRET = "broker-secret-4711"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One service for the many rejection cases: each must leave it unchanged anyway."""
    yield from module_service(tmp_path_factory)


def upload(service: RunningService, name: str, data: bytes) -> requests.Response:
    return service.request("POST", f"{API}/files/{name}", files={"file": ("x", data)})


def files_dir(service: RunningService) -> Path:
    return service.data_dir / "files"


def config_bytes(service: RunningService) -> bytes:
    return (service.data_dir / "config.json").read_bytes()


def meter_energy(service: RunningService, index: int) -> float:
    value: float = service.get(f"{API}/ade7953/meter-values?index={index}").json()["activeEnergyImported"]
    return value


def set_energy(service: RunningService, channel: int, wh: float) -> None:
    body = {"channel": channel, "activeEnergyImported": wh, "activeEnergyExported": 0,
            "reactiveEnergyImported": 0, "reactiveEnergyExported": 0, "apparentEnergy": wh}  # fmt: skip
    assert service.request("PUT", f"{API}/ade7953/energy", json=body).status_code == 200


def inactive_channel(service: RunningService) -> int:
    """A channel that does not count on its own: its energy only changes when we set it."""
    return next(c.index for c in service.services.config.current.channels if not c.active)


def raw_request(
    service: RunningService, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """A request sent byte for byte (requests would normalise dot segments and set the length
    itself), with the Digest response computed by hand; no body is sent."""
    conn = http.client.HTTPConnection("127.0.0.1", service.http_port, timeout=5)
    try:
        conn.request("GET", f"{API}/health/x")  # any protected target: just for a challenge
        challenge = conn.getresponse()
        challenge.read()
        params = requests.utils.parse_dict_header(
            challenge.headers["WWW-Authenticate"].removeprefix("Digest ")
        )
        ha1 = md5(f"admin:{params['realm']}:{PASSWORD}")
        answer = md5(f"{ha1}:{params['nonce']}:00000001:c0ffee:auth:{md5(f'{method}:{target}')}")
        auth = (
            f'Digest username="admin", realm="{params["realm"]}", nonce="{params["nonce"]}", '
            f'uri="{target}", qop=auth, nc=00000001, cnonce="c0ffee", response="{answer}", '
            f'opaque="{params.get("opaque", "")}"'
        )
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in {"Authorization": auth, **(headers or {})}.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# ----------------------------------------------------------------------------- files
def test_upload_list_download_delete(service: RunningService) -> None:
    assert service.get(f"{API}/list-files").json() == {}
    ok = upload(service, "energy/daily/2025-11-25.csv", CSV)
    assert ok.json() == {"success": True, "message": "File uploaded successfully"}
    archive = gzip.compress(CSV)
    assert upload(service, "energy%2Fmonthly%2F2025-11.csv.gz", archive).status_code == 200
    assert upload(service, "notes.txt", b"hello").status_code == 200

    assert service.get(f"{API}/list-files").json() == {
        "energy/daily/2025-11-25.csv": len(CSV),
        "energy/monthly/2025-11.csv.gz": len(archive),
        "notes.txt": 5,
    }
    for folder in ("energy/daily", "/energy/daily", "energy/daily/"):
        listing = service.get(f"{API}/list-files", params={"folder": folder}).json()
        assert listing == {"2025-11-25.csv": len(CSV)}
    missing = service.get(f"{API}/list-files?folder=energy/weekly")
    assert missing.status_code == 200 and missing.content == b"null"

    csv = service.get(f"{API}/files/energy%2Fdaily%2F2025-11-25.csv")
    assert csv.status_code == 200 and csv.content == CSV
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["etag"] == f'"size-{len(CSV)}"' and csv.headers["cache-control"] == "no-cache"
    assert csv.headers["content-disposition"].startswith("inline")
    again = service.get(
        f"{API}/files/energy/daily/2025-11-25.csv", headers={"If-None-Match": csv.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""

    gz = service.get(f"{API}/files/energy%2Fmonthly%2F2025-11.csv.gz?download")
    assert gz.headers["content-type"] == "application/gzip" and "content-encoding" not in gz.headers
    assert gzip.decompress(gz.content) == CSV  # the raw gzip bytes, as stored
    assert gz.headers["content-disposition"].startswith("attachment")
    text = service.get(f"{API}/files/notes.txt")
    assert text.headers["content-type"].startswith("text/plain")
    assert not text.headers.get("etag", "").startswith('"size-')  # only history files

    deleted = service.request("POST", f"{API}/delete-file", json={"path": "/notes.txt"})
    assert deleted.json() == {"success": True, "message": "File deleted successfully"}
    assert service.get(f"{API}/files/notes.txt").status_code == 404
    gone = service.request("POST", f"{API}/delete-file", json={"path": "notes.txt"})
    assert (gone.status_code, gone.json()["error"]) == (404, "File not found: notes.txt")
    for bad in ({}, {"path": 3}, {"filepath": "notes.txt"}):
        response = service.request("POST", f"{API}/delete-file", json=bad)
        assert response.status_code == 400 and "'path'" in response.json()["error"]


def test_upload_replaces_atomically_and_needs_multipart(service: RunningService) -> None:
    upload(service, "a.txt", b"old")
    assert upload(service, "a.txt", b"new content").status_code == 200
    assert (files_dir(service) / "a.txt").read_bytes() == b"new content"
    raw = service.request("POST", f"{API}/files/a.txt", data=b"raw", headers={"Content-Type": "text/plain"})
    assert raw.status_code == 400 and "multipart" in raw.json()["error"]
    assert (files_dir(service) / "a.txt").read_bytes() == b"new content"
    empty = service.get(f"{API}/files/")
    assert (empty.status_code, empty.json()["error"]) == (400, "File path cannot be empty")


TRAVERSALS = [
    "..%2Fcredentials.json",
    "%2E%2E%2Fcredentials.json",
    "energy%2F..%2F..%2Fenergy.db",
    "%252e%252e%252fcredentials.json",  # double-encoded: refused, not decoded twice
    "%2F%2Fetc%2Fpasswd",  # still absolute after the one allowed leading slash
    "a%5C..%5C..%5Ccredentials.json",  # backslashes
    "a%00b",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_traversal_is_rejected_everywhere(shared: RunningService, name: str) -> None:
    service = shared
    listing = service.get(f"{API}/list-files").json()
    creds_before = (service.data_dir / CREDENTIALS_FILE).read_bytes()
    got = service.get(f"{API}/files/{name}")
    assert got.status_code == 400 and got.json()["success"] is False
    assert upload(service, name, b"evil").status_code == 400
    decoded = unquote(name)
    deleted = service.request("POST", f"{API}/delete-file", json={"path": decoded})
    assert deleted.status_code == 400
    listed = service.get(f"{API}/list-files", params={"folder": decoded})
    assert listed.status_code == 400
    assert (service.data_dir / CREDENTIALS_FILE).read_bytes() == creds_before
    assert (service.data_dir / "energy.db").exists()
    assert service.get(f"{API}/list-files").json() == listing
    assert sorted(p.name for p in service.data_dir.parent.iterdir()) == ["data"]


def test_raw_dot_segments_and_absolute_names_stay_inside(service: RunningService) -> None:
    for target in (f"{API}/files/../credentials.json", f"{API}/files/energy/../../energy.db"):
        status, body = raw_request(service, "GET", target)
        assert status in (400, 404) and b"ha1" not in body and b"SQLite" not in body
    # One leading slash is the device's filesystem root, i.e. the file area: never the host's /etc.
    etc = service.get(f"{API}/files/%2Fetc%2Fpasswd")
    assert etc.status_code == 404


def test_symlinks_leaving_the_area_are_refused(service: RunningService) -> None:
    os.symlink(service.data_dir, files_dir(service) / "up")
    os.symlink(service.data_dir / CREDENTIALS_FILE, files_dir(service) / "creds.json")
    assert service.get(f"{API}/files/up%2Fcredentials.json").status_code == 400
    assert service.get(f"{API}/files/creds.json").status_code == 400
    assert upload(service, "up/config.json", b"{}").status_code == 400
    assert service.request("POST", f"{API}/delete-file", json={"path": "creds.json"}).status_code == 400
    assert (service.data_dir / CREDENTIALS_FILE).exists()
    assert service.get(f"{API}/list-files").json() == {}  # links are not listed


# ----------------------------------------------------------------------------- configuration backup
def set_secret(service: RunningService) -> None:
    response = service.request("PATCH", f"{API}/custom-mqtt/config", json={"password": SECRET})
    assert response.status_code == 200


def backup_document(service: RunningService) -> tuple[dict[str, Any], str]:
    response = service.get(f"{API}/backup/configuration")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith('attachment; filename="config_backup_')
    doc: dict[str, Any] = response.json()
    return doc, response.text


def restore(service: RunningService, doc: Any, query: str = "") -> requests.Response:
    data = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
    return service.request(
        "POST", f"{API}/restore/configuration{query}", files={"file": ("backup.json", data)}
    )


def test_configuration_backup_is_whole_and_hides_secrets(service: RunningService) -> None:
    set_secret(service)
    doc, text = backup_document(service)
    assert doc["version"] == 1 and doc["type"] == "configuration"
    assert doc["deviceId"] == service.services.device_id and doc["firmwareVersion"]
    assert set(doc["configuration"]) == set(AppConfig.model_fields)  # every section, added ones too
    assert SECRET not in text and doc["configuration"]["mqtt"]["password"] == PLACEHOLDER
    assert "ha1" not in text.lower()


def test_backup_change_restore_round_trip(service: RunningService) -> None:
    set_secret(service)
    doc, _ = backup_document(service)
    service.request("PATCH", f"{API}/ade7953/channel", json={"index": 3, "label": "Oven"})
    service.request("PUT", f"{API}/led/brightness", json={"brightness": 5})
    service.request("PATCH", f"{API}/ade7953/config", json={"aVGain": 1})
    assert service.get(f"{API}/ade7953/channel?index=3").json()["label"] == "Oven"

    response = restore(service, doc)
    assert response.status_code == 200 and response.json()["success"] is True
    label = doc["configuration"]["channels"][3]["label"]
    assert label != "Oven"
    assert service.get(f"{API}/ade7953/channel?index=3").json()["label"] == label
    assert service.get(f"{API}/led/brightness").json()["brightness"] == 75
    assert service.get(f"{API}/ade7953/config").json()["aVGain"] == 4050000
    assert service.services.meter.latest.channels[3].label == label  # live in the meter too
    stored = json.loads(config_bytes(service))
    assert stored["mqtt"]["password"] == SECRET  # the masked secret kept the stored one
    raw = service.request("POST", f"{API}/restore/configuration", json=doc)  # a plain JSON body works
    assert raw.status_code == 200


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["configuration"]["channels"][3].update(label=""), "configuration.channels.3.label"),
        (lambda d: d["configuration"].update(sampleTime=50), "configuration.sampleTime"),
        (lambda d: d["configuration"]["led"].update(brightness=300), "configuration.led.brightness"),
        (lambda d: d["configuration"].update(bogus=1), "configuration.bogus"),
        (lambda d: d.update(type="filesystem"), "Invalid backup format"),
        (lambda d: d.update(version=2), "Invalid backup format"),
        (lambda d: d.pop("firmwareVersion"), "Backup missing firmware version"),
        (lambda d: d.update(firmwareVersion="99.0.0"), "Firmware version incompatible"),
        (lambda d: d.update(deviceId="000000000000"), "Device ID mismatch"),
    ],
)
def test_invalid_configuration_restore_changes_nothing(
    shared: RunningService, mutate: Any, fragment: str
) -> None:
    service = shared
    doc, _ = backup_document(service)
    service.request("PUT", f"{API}/led/brightness", json={"brightness": 33})
    before = config_bytes(service)
    mutate(doc)
    response = restore(service, doc)
    assert response.status_code == 400 and fragment in response.json()["error"]
    assert config_bytes(service) == before
    assert service.get(f"{API}/led/brightness").json()["brightness"] == 33


def test_configuration_restore_force_and_bad_json(service: RunningService) -> None:
    doc, _ = backup_document(service)
    doc["deviceId"] = "000000000000"
    doc["configuration"]["led"]["brightness"] = 12
    assert restore(service, doc, "?force=true").status_code == 200
    assert service.get(f"{API}/led/brightness").json()["brightness"] == 12
    broken = restore(service, b"{not json")
    assert broken.status_code == 400 and "Invalid JSON format" in broken.json()["error"]


# ----------------------------------------------------------------------------- filesystem backup
def backup_tar(service: RunningService) -> bytes:
    response = service.get(f"{API}/backup/filesystem")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-tar"
    assert "attachment" in response.headers["content-disposition"]
    return response.content


def restore_tar(service: RunningService, data: bytes) -> requests.Response:
    return service.request(
        "POST", f"{API}/restore/filesystem", files={"file": ("backup.tar", data, "application/x-tar")}
    )


def test_filesystem_backup_is_a_tar_without_credentials_or_secrets(service: RunningService) -> None:
    set_secret(service)
    set_energy(service, inactive_channel(service), 777.0)  # committed to the WAL, not checkpointed
    upload(service, "energy/daily/2025-11-25.csv", CSV)
    (files_dir(service) / ".upload.tmp").write_bytes(b"half")
    data = backup_tar(service)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
        assert {"config.json", "energy.db", "files/energy/daily/2025-11-25.csv"} <= names
        assert not {CREDENTIALS_FILE, "device-id", "energy.db-wal", "energy.db.bak"} & names
        assert not any(n.endswith(".tmp") for n in names)
        config = tar.extractfile("config.json").read()  # type: ignore[union-attr]
        db = tar.extractfile("energy.db").read()  # type: ignore[union-attr]
    assert SECRET.encode() not in data
    assert json.loads(config)["channels"]
    (service.data_dir.parent / "copy.db").write_bytes(db)
    with sqlite3.connect(service.data_dir.parent / "copy.db") as conn:  # a complete database alone
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        totals = [row[0] for row in conn.execute("SELECT active_imported FROM energy")]
    assert 777.0 in totals


def test_filesystem_round_trip_restores_config_files_and_energy(service: RunningService) -> None:
    channel = inactive_channel(service)
    set_energy(service, channel, 1234.5)
    upload(service, "energy/daily/2025-11-25.csv", CSV)
    data = backup_tar(service)

    set_energy(service, channel, 99999.0)
    service.request("PUT", f"{API}/led/brightness", json={"brightness": 1})
    upload(service, "energy/daily/2025-11-25.csv", b"changed")
    upload(service, "kept.txt", b"newer file")

    response = restore_tar(service, data)
    assert response.json() == {"success": True, "message": "Filesystem restored successfully"}
    assert meter_energy(service, channel) == 1234.5  # live, no restart
    with sqlite3.connect(service.data_dir / "energy.db") as conn:  # and saved
        row = conn.execute("SELECT active_imported FROM energy WHERE channel = ?", (channel,)).fetchone()
    assert row[0] == 1234.5
    assert service.get(f"{API}/led/brightness").json()["brightness"] == 75
    assert (files_dir(service) / "energy/daily/2025-11-25.csv").read_bytes() == CSV
    assert (files_dir(service) / "kept.txt").read_bytes() == b"newer file"  # others are kept
    assert not [p for p in service.data_dir.iterdir() if p.name.startswith(".restore-")]


def tar_with(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ([(member("../evil.txt"), b"x")], "unsafe member path"),
        ([(member("/etc/evil"), b"x")], "unsafe member path"),
        ([(member("files/../../evil"), b"x")], "unsafe member path"),
        ([(member("files/link", tarfile.SYMTYPE, "/etc/passwd"), None)], "only regular files"),
        ([(member("files/hard", tarfile.LNKTYPE, "config.json"), None)], "only regular files"),
        ([(member("files/dev", tarfile.CHRTYPE), None)], "only regular files"),
        ([(member(CREDENTIALS_FILE), b"{}")], "not part of a homemeter backup"),
        ([(member("device-id"), b"000000000000")], "not part of a homemeter backup"),
        ([(member("config.json"), b"{not json")], "config.json: invalid JSON"),
        ([(member("config.json"), b'{"sampleTime": 10, "channels": []}')], "config.json: "),
        ([(member("energy.db"), b"not a database at all" * 100)], "energy.db"),
        ([(member("files/a%2e%2e"), b"x")], "Invalid file path"),
    ],
)
def test_invalid_archive_changes_nothing(
    shared: RunningService, members: list[tuple[tarfile.TarInfo, bytes | None]], fragment: str
) -> None:
    service = shared
    upload(service, "keep.csv", CSV)
    config_before = config_bytes(service)
    # A valid member first: it must not be applied when a later one is rejected.
    data = tar_with((member("files/keep.csv"), b"replaced"), *members)
    response = restore_tar(service, data)
    assert response.status_code == 400 and fragment in response.json()["error"], response.json()
    assert config_bytes(service) == config_before
    assert (files_dir(service) / "keep.csv").read_bytes() == CSV
    assert not (service.data_dir.parent / "evil.txt").exists()
    assert not [p for p in service.data_dir.iterdir() if p.name.startswith(".restore-")]


@pytest.mark.parametrize("path", ["/restore/filesystem", "/restore/configuration", "/files/big.bin"])
def test_uploads_are_capped_by_their_declared_length(shared: RunningService, path: str) -> None:
    multipart = {"Content-Type": "multipart/form-data; boundary=x"}
    status, body = raw_request(shared, "POST", f"{API}{path}", multipart | {"Content-Length": "999999999"})
    assert status == 413 and b"Payload Too Large" in body
    status, body = raw_request(shared, "POST", f"{API}{path}", multipart)  # no length, e.g. chunked
    assert status == 411 and b"Content-Length" in body


def test_empty_or_foreign_archives_are_rejected(service: RunningService) -> None:
    empty = restore_tar(service, tar_with())
    assert empty.status_code == 400 and "nothing to restore" in empty.json()["error"]
    garbage = restore_tar(service, b"\x00garbage" * 200)
    assert garbage.status_code == 400 and "tar" in garbage.json()["error"]
