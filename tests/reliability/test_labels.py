"""Labels at and beyond their limits, with unicode and control characters, through every output:
JSON, /metrics, the CSV download (web/src/js/history.js) and the pages' scripts.

The pages themselves are checked in a browser by tests/browser/test_stored_xss.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.service import Homemeter, running, write_config

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    '=HYPERLINK("http://x")',
    'a,b;"c"\r\nd',
    "tab\there\x00nul\x1bESC",
    "Küche ☀ \U0001d518 \u202etxt.exe",
    "<b>bold</b>&amp;",
    "x" * 63,
)
# Prometheus text format: name{label="escaped",...} value, one sample per line.
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="([^"\\\n]|\\.)*",?)*\})? \S+$')


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homemeter]:
    data = tmp_path_factory.mktemp("labels") / "data"
    write_config(data)
    with running(data) as service:
        yield service


def _put_label(svc: Homemeter, index: int, label: str, group: str) -> int:
    doc = svc.get(f"/api/v1/ade7953/channel?index={index}").json()
    body = {**doc, "active": True, "label": label, "groupLabel": group}
    return svc.request("PUT", "/api/v1/ade7953/channel", json=body).status_code


def test_labels_beyond_the_limit_are_refused_naming_the_field(svc: Homemeter) -> None:
    for label, field in (("x" * 64, "label"), ("", "label")):
        doc = svc.get("/api/v1/ade7953/channel?index=1").json()
        r = svc.request("PUT", "/api/v1/ade7953/channel", json={**doc, "label": label})
        assert r.status_code == 400 and field in r.json()["error"], r.text


def test_hostile_labels_round_trip_and_keep_metrics_parseable(svc: Homemeter) -> None:
    for i, label in enumerate(HOSTILE, start=1):
        assert _put_label(svc, i, label, f"{label[:60]}{i}") == 200, label
    shown = {v["index"]: v["label"] for v in svc.get("/api/v1/ade7953/meter-values").json()}
    for i, label in enumerate(HOSTILE, start=1):
        assert svc.get(f"/api/v1/ade7953/channel?index={i}").json()["label"] == label
        assert shown.get(i, label) == label
    # Lines end at \n only (the format escapes \n, \\ and \"; a \r in a value is just a character).
    lines = [ln for ln in svc.get("/metrics").text.split("\n") if ln and not ln.startswith("#")]
    broken = [ln for ln in lines if not SAMPLE.match(ln)]
    assert not broken, broken[:3]
    assert any("\\nd" in ln for ln in lines)  # the newline of HOSTILE[1], escaped


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (it builds the web UI)")
def test_csv_download_keeps_one_cell_per_name_and_no_formula() -> None:
    data = {"labels": ["2026-01-01"], "series": [{"name": n, "values": [1.0]} for n in HOSTILE]}
    script = (f"import {{ toCsv }} from {json.dumps(str(ROOT / 'web/src/js/history.js'))};"
              f"process.stdout.write(toCsv({json.dumps(data)}));")  # fmt: skip
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, check=True
    ).stdout
    rows = list(csv.reader(io.StringIO(out.decode(), newline="")))
    assert len(rows) == 2 and len(rows[0]) == len(HOSTILE) + 1, rows
    for cell, name in zip(rows[0][1:], HOSTILE, strict=True):
        assert cell.lstrip("'") == f"{name} (kWh)"
        assert not cell.startswith(("=", "+", "-", "@"))


def test_pages_never_insert_html_from_data() -> None:
    """The scripts build the DOM with textContent/createElement: no HTML parsing of any value."""
    sinks = re.compile(
        r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function"
    )
    found = [f"{p.name}:{n}" for p in (ROOT / "web/src/js").rglob("*.js")
             for n, line in enumerate(p.read_text().splitlines(), 1) if sinks.search(line)]  # fmt: skip
    assert not found, found


BIG = "x" * 10_000
LIMITS = (  # (method, path, body, the field the 400 must name)
    ("PATCH", "/api/v1/modbus/config", {"port": 0}, "port"),
    ("PATCH", "/api/v1/modbus/config", {"port": 65536}, "port"),
    ("PATCH", "/api/v1/modbus/config", {"idleTimeout": -1}, "idleTimeout"),
    ("PATCH", "/api/v1/modbus/config", {"bind": "-bad-host-"}, "bind"),
    ("PATCH", "/api/v1/modbus/config", {"bind": BIG}, "Payload Too Large"),  # over the body limit: 413
    ("PATCH", "/api/v1/custom-mqtt/config", {"port": 0}, "port"),
    ("PATCH", "/api/v1/custom-mqtt/config", {"port": 65536}, "port"),
    ("PATCH", "/api/v1/custom-mqtt/config", {"frequency": -1}, "frequency"),
    ("PATCH", "/api/v1/custom-mqtt/config", {"topic": "a/#"}, "topic"),
    ("PATCH", "/api/v1/custom-mqtt/config", {"topic": "x" * 128}, "topic"),
    ("PATCH", "/api/v1/custom-mqtt/config", {"server": "x" * 300}, "server"),
    ("PATCH", "/api/v1/custom-mqtt/config", {"server": BIG}, "Payload Too Large"),
    ("PATCH", "/api/v1/influxdb/config", {"port": 65536}, "port"),
    ("PATCH", "/api/v1/influxdb/config", {"frequency": -5}, "frequency"),
    ("PUT", "/api/v1/logs-udp-destination", {"destination": "127.0.0.1", "port": 0}, "port"),
    ("PUT", "/api/v1/logs-udp-destination", {"destination": "1.2.3.4.5", "port": 514}, "IP address"),
    ("PATCH", "/api/v1/mdns/config", {"hostname": "a" * 64}, "hostname"),
    ("PATCH", "/api/v1/metrics/config", {"auth": "bearer", "token": "short"}, "token"),
)


@pytest.mark.parametrize(("method", "path", "body", "field"), LIMITS, ids=[f"{c[1]}:{c[3]}" for c in LIMITS])
def test_values_beyond_limits_are_refused_naming_the_field(
    svc: Homemeter, method: str, path: str, body: dict[str, object], field: str
) -> None:
    before = svc.get(path).json()
    r = svc.request(method, path, json=body)
    status = 413 if field == "Payload Too Large" else 400
    assert r.status_code == status and field in r.json()["error"], r.text
    assert svc.get(path).json() == before


def test_energy_totals_beyond_the_limit_are_refused(svc: Homemeter) -> None:
    """1e308 Wh used to be stored, and every meter-values answer after it was a 500 (make fuzz)."""
    keys = ("activeEnergyImported", "activeEnergyExported", "reactiveEnergyImported",
            "reactiveEnergyExported", "apparentEnergy")  # fmt: skip
    r = svc.request("PUT", "/api/v1/ade7953/energy", json={"channel": 0, **dict.fromkeys(keys, 1e308)})
    assert r.status_code == 400 and "activeEnergyImported" in r.json()["error"], r.text
    assert svc.get("/api/v1/ade7953/meter-values").status_code == 200
