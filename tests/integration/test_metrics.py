"""`GET /metrics` against the running service, read as Prometheus reads it.

The exposition is parsed with prometheus_client's own parser and checked against the REST
meter-values and the snapshot they were both rendered from; counters must survive a restart; each
authentication mode is exercised over real HTTP, and every other path keeps Digest in every mode.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from homemeter.meter.snapshot import MeterSnapshot
from tests.integration.conftest import PASSWORD, RunningService, start_service, wait_until

CONFIG = "/api/v1/metrics/config"
METER_VALUES = "/api/v1/ade7953/meter-values"
TOKEN = "s3cret-scrape-token-0123456789"
LABELS = {"channel", "label", "role", "phase", "group"}

# What a Prometheus user types in a query: written out, not derived from the code under test.
# (family name as the parser reports it, type, meter-values key, factor from the meter-values unit)
CHANNEL_FAMILIES = (
    ("homemeter_channel_voltage_volts", "gauge", "voltage", 1.0),
    ("homemeter_channel_current_amperes", "gauge", "current", 1.0),
    ("homemeter_channel_active_power_watts", "gauge", "activePower", 1.0),
    ("homemeter_channel_apparent_power_volt_amperes", "gauge", "apparentPower", 1.0),
    ("homemeter_channel_reactive_power_volt_amperes_reactive", "gauge", "reactivePower", 1.0),
    ("homemeter_channel_power_factor_ratio", "gauge", "powerFactor", 1.0),
    ("homemeter_channel_active_energy_imported_joules", "counter", "activeEnergyImported", 3600.0),
    ("homemeter_channel_active_energy_exported_joules", "counter", "activeEnergyExported", 3600.0),
    ("homemeter_channel_reactive_energy_imported_volt_ampere_reactive_seconds", "counter",
     "reactiveEnergyImported", 3600.0),
    ("homemeter_channel_reactive_energy_exported_volt_ampere_reactive_seconds", "counter",
     "reactiveEnergyExported", 3600.0),
    ("homemeter_channel_apparent_energy_volt_ampere_seconds", "counter", "apparentEnergy", 3600.0),
)  # fmt: skip
DECIMALS = {"voltage": 1, "current": 3, "powerFactor": 3}  # meter-values rounding; the rest 1
ROLE_FAMILIES = (
    ("homemeter_role_active_power_watts", "active_power", 1.0),
    ("homemeter_role_reactive_power_volt_amperes_reactive", "reactive_power", 1.0),
    ("homemeter_role_apparent_power_volt_amperes", "apparent_power", 1.0),
    ("homemeter_role_power_factor_ratio", "power_factor", 1.0),
    ("homemeter_role_active_energy_imported_joules", "active_energy_imported", 3600.0),
    ("homemeter_role_active_energy_exported_joules", "active_energy_exported", 3600.0),
    ("homemeter_role_reactive_energy_imported_volt_ampere_reactive_seconds", "reactive_energy_imported",
     3600.0),
    ("homemeter_role_reactive_energy_exported_volt_ampere_reactive_seconds", "reactive_energy_exported",
     3600.0),
    ("homemeter_role_apparent_energy_volt_ampere_seconds", "apparent_energy", 3600.0),
)  # fmt: skip
ENERGY_SAMPLES = tuple(f"{name}_total" for name, kind, _, _ in CHANNEL_FAMILIES if kind == "counter")

Families = dict[str, Any]  # family name -> prometheus_client Metric


def parse(text: str) -> Families:
    return {f.name: f for f in text_string_to_metric_families(text)}


def scrape(service: RunningService, **kwargs: Any) -> Families:
    response = service.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(families: Families, name: str, **labels: str) -> float:
    family = name.removesuffix("_total")
    (found,) = [
        s.value for s in families[family].samples if s.name == name and labels.items() <= s.labels.items()
    ]
    return float(found)


def by_channel(families: Families, name: str) -> dict[str, Sample]:
    return {s.labels["channel"]: s for s in families[name].samples}


def active_everywhere(service: RunningService) -> None:
    """Every channel active (out of the box some are not), and each with a first reading."""
    channels = service.get("/api/v1/ade7953/channel").json()
    reply = service.request("PUT", "/api/v1/ade7953/channels", json=[c | {"active": True} for c in channels])
    assert reply.status_code == 200, reply.text
    wait_until(
        lambda: len(service.get(METER_VALUES).json()) == len(channels), what="a reading on every channel"
    )


@contextmanager
def paused(service: RunningService, monkeypatch: pytest.MonkeyPatch) -> Iterator[MeterSnapshot]:
    """The meter keeps sampling but publishes nothing: every answer comes from one snapshot."""
    meter = service.runtime.meter
    with monkeypatch.context() as m:
        m.setattr(meter, "publish", lambda at=None: meter.latest)
        yield meter.latest


def snake(key: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", key).lower()


def test_exposition_matches_meter_values_of_the_same_snapshot(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    active_everywhere(service)
    with paused(service, monkeypatch) as snap:
        values = service.get(METER_VALUES).json()
        families = scrape(service)
        frequency = service.get("/api/v1/ade7953/grid-frequency").json()["gridFrequency"]
    assert value(families, "homemeter_meter_snapshots_total") == snap.seq
    rows = {str(row["index"]): row for row in values}
    assert len(rows) == 17
    for name, kind, key, factor in CHANNEL_FAMILIES:
        family = families[name]
        assert family.type == kind, name
        samples = by_channel(families, name)
        assert samples.keys() == rows.keys(), name  # the channels meter-values lists, no others
        for index, sample in samples.items():
            row, reading = rows[index], snap.channels[int(index)]
            assert sample.name == (f"{name}_total" if kind == "counter" else name)
            assert sample.labels == {"channel": index, "label": row["label"], "role": row["role"],
                                     "phase": str(row["phase"]), "group": row["groupLabel"]}  # fmt: skip
            tolerance = 0.5 * 10 ** -DECIMALS.get(key, 1) + 1e-9
            assert abs(sample.value / factor - row["data"][key]) <= tolerance, (name, index)
            # Exact: the snapshot's float (times the factor), printed as its repr, read back bit for bit.
            assert sample.value == getattr(reading, snake(key)) * factor
    for name, attr, factor in ROLE_FAMILIES:
        assert families[name].type == "gauge", name  # sums over a role can drop: never counters
        got = {s.labels["role"]: s.value for s in families[name].samples}
        assert got == {a.role.value: getattr(a, attr) * factor for a in snap.aggregates}, name
    assert value(families, "homemeter_grid_frequency_hertz") == snap.grid_frequency
    assert frequency == snap.grid_frequency
    assert value(families, "homemeter_meter_readings_total") == snap.readings
    assert value(families, "homemeter_meter_reading_failures_total") == snap.failures


def test_only_channels_with_readings_are_listed(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    inactive = [c["index"] for c in service.get("/api/v1/ade7953/channel").json() if not c["active"]]
    assert inactive  # the factory table leaves some channels off
    wait_until(lambda: service.get(METER_VALUES).json(), what="a first reading")
    with paused(service, monkeypatch):
        listed = {str(row["index"]) for row in service.get(METER_VALUES).json()}
        families = scrape(service)
    for name, _, _, _ in CHANNEL_FAMILIES:
        assert by_channel(families, name).keys() == listed, name
    assert not listed & {str(i) for i in inactive}


def modbus_read(port: int) -> None:
    """One FC03 read of the voltage register pair (MBAP header + PDU), answered with data."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 100, 2))
        reply = s.recv(64)
    assert reply[7] == 3, reply  # function code echoed: not an exception response


def test_service_health_component_and_http_counters(service: RunningService) -> None:
    before = scrape(service)
    for component in ("energy", "modbus"):
        states = {s.labels["state"]: s.value for s in before["homemeter_component_state"].samples
                  if s.labels["component"] == component}  # fmt: skip
        assert states["running"] == 1.0 and sum(states.values()) == 1.0, (component, states)
    assert value(before, "homemeter_component_events_total", component="energy", counter="saveErrors") == 0
    saves = value(before, "homemeter_component_events_total", component="energy", counter="saves")
    requests_before = value(
        before, "homemeter_component_events_total", component="modbus", counter="requests"
    )
    assert value(before, "homemeter_component_detail", component="modbus", detail="listening") == 1.0
    assert value(before, "homemeter_meter_sample_time_seconds") == 0.2
    assert value(before, "homemeter_meter_late_windows_total") >= 0
    assert value(before, "process_resident_memory_bytes") > 0
    assert before["process_cpu_seconds"].type == "counter"

    modbus_read(service.modbus_port)
    # Setting a channel's energy is saved at once: a save, and the counter shows the new total in J.
    reply = service.request("PUT", "/api/v1/ade7953/energy", json={
        "channel": 0, "activeEnergyImported": 1234.5, "activeEnergyExported": 0.0,
        "reactiveEnergyImported": 0.0, "reactiveEnergyExported": 0.0, "apparentEnergy": 1500.0})  # fmt: skip
    assert reply.status_code == 200, reply.text
    after = scrape(service)
    assert value(after, "homemeter_component_events_total", component="energy", counter="saves") > saves
    assert value(after, "homemeter_component_events_total", component="modbus", counter="requests") == (
        requests_before + 1
    )
    imported = value(after, "homemeter_channel_active_energy_imported_joules_total", channel="0")
    assert 1234.5 * 3600 <= imported < 1240 * 3600
    # The first scrape and the PUT were answered (< 400) before the second scrape was rendered.
    ok = "homemeter_http_requests_total"
    assert value(after, ok, outcome="ok") >= value(before, ok, outcome="ok") + 2
    assert value(after, ok, outcome="error") >= value(before, ok, outcome="error")


def test_openmetrics_when_the_scraper_asks_for_it(service: RunningService) -> None:
    response = service.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(response.text)}
    joules = families["homemeter_channel_active_energy_imported_joules"]
    assert joules.type == "counter" and joules.unit == "joules"


def test_counters_never_decrease_across_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    first = start_service(data, monkeypatch)
    try:
        active_everywhere(first)
        wait_until(lambda: value(scrape(first), "homemeter_meter_readings_total") > 200, what="some energy")
        before = scrape(first)
    finally:
        first.stop()
    second = start_service(data, monkeypatch)
    try:
        # Right after the start, before every channel is read again: a channel shows up only with a
        # reading, and from then on from where it stood.
        after = scrape(second)
        wait_until(
            lambda: len(by_channel(scrape(second), ENERGY_SAMPLES[0].removesuffix("_total"))) == 17,
            what="every channel read again",
        )
        later = scrape(second)
    finally:
        second.stop()
    grew = 0
    for name in ENERGY_SAMPLES:
        family = name.removesuffix("_total")
        old = by_channel(before, family)
        assert len(old) == 17
        for scraped in (after, later):
            for index, sample in by_channel(scraped, family).items():
                assert sample.value >= old[index].value, (name, index)
                grew += sample.value > old[index].value
    assert grew  # the household kept consuming after the restart


# ----------------------------------------------------------------------------- authentication
def set_auth(service: RunningService, **fields: str) -> None:
    reply = service.request("PATCH", CONFIG, json=fields)
    assert reply.status_code == 200, reply.text


def bare(service: RunningService, path: str = "/metrics", **kwargs: Any) -> requests.Response:
    """A request without the fixture's Digest session."""
    return requests.get(f"{service.url}{path}", timeout=10, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_digest_by_default(service: RunningService) -> None:
    assert service.get(CONFIG).json() == {
        "auth": "digest",
        "token": "",
        "username": "prometheus",
        "password": "",
    }
    refused = bare(service)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Digest ")
    assert bare(service, headers=bearer(TOKEN)).status_code == 401
    assert bare(service, auth=HTTPBasicAuth("admin", PASSWORD)).status_code == 401
    assert service.get("/metrics").status_code == 200


def test_bearer_token(service: RunningService) -> None:
    set_auth(service, auth="bearer", token=TOKEN)
    ok = bare(service, headers=bearer(TOKEN))
    assert ok.status_code == 200
    assert "homemeter_channel_active_power_watts" in parse(ok.text)
    wrong = bare(service, headers=bearer(TOKEN + "x"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="homemeter", error="invalid_token"'
    assert bare(service).status_code == 401
    assert service.get("/metrics").status_code == 401  # the configured scheme only, not Digest too
    # Never shown; sending the mask back keeps it; the file (0600) holds it for the next start.
    shown = service.get(CONFIG).json()
    assert shown["token"] == "********" and TOKEN not in service.get("/api/v1/backup/configuration").text
    set_auth(service, **shown)
    assert bare(service, headers=bearer(TOKEN)).status_code == 200
    assert json.loads((service.data_dir / "config.json").read_text())["metrics"]["token"] == TOKEN
    # Every other path: Digest still, a bearer token opens nothing.
    assert bare(service, METER_VALUES, headers=bearer(TOKEN)).status_code == 401
    assert bare(service, "/metrics/", headers=bearer(TOKEN)).status_code == 401
    assert bare(service, CONFIG, headers=bearer(TOKEN)).status_code == 401


def test_basic_credentials(service: RunningService) -> None:
    set_auth(service, auth="basic", username="prom", password="scrape-password")
    assert bare(service, auth=HTTPBasicAuth("prom", "scrape-password")).status_code == 200
    wrong = bare(service, auth=HTTPBasicAuth("prom", "scrape-passwor"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic ")
    assert bare(service, auth=HTTPBasicAuth("admin", "scrape-password")).status_code == 401
    assert bare(service, auth=HTTPDigestAuth("admin", PASSWORD)).status_code == 401
    assert service.get(CONFIG).json()["password"] == "********"
    assert bare(service, METER_VALUES, auth=HTTPBasicAuth("prom", "scrape-password")).status_code == 401
    assert bare(service, METER_VALUES, auth=HTTPBasicAuth("admin", PASSWORD)).status_code == 401


def test_no_authentication_for_metrics_only(service: RunningService) -> None:
    set_auth(service, auth="none")
    assert bare(service).status_code == 200
    assert bare(service, METER_VALUES).status_code == 401
    assert bare(service, CONFIG).status_code == 401
    assert bare(service, "/openapi.json").status_code == 401
    assert requests.post(f"{service.url}/metrics", timeout=10).status_code == 405
    # Back to Digest, live: the next scrape needs it again.
    set_auth(service, auth="digest")
    assert bare(service).status_code == 401
    assert service.get("/metrics").status_code == 200


def test_a_mode_without_its_credentials_is_refused(service: RunningService) -> None:
    reply = service.request("PATCH", CONFIG, json={"auth": "bearer"})
    assert reply.status_code == 400 and "token" in reply.json()["error"]
    reply = service.request("PATCH", CONFIG, json={"auth": "basic", "password": "short"})
    assert reply.status_code == 400 and "password" in reply.json()["error"]
    assert service.get(CONFIG).json()["auth"] == "digest"  # nothing changed
    assert bare(service).status_code == 401


def test_wrong_tokens_count_as_failed_logins(service: RunningService) -> None:
    """The same limiter as Digest: five wrong tokens block the address, for every path."""
    set_auth(service, auth="bearer", token=TOKEN)
    for _ in range(5):
        assert bare(service, headers=bearer("guess-" + TOKEN)).status_code == 401
    blocked = bare(service, headers=bearer(TOKEN))
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert service.get(METER_VALUES).status_code == 429


def test_no_secret_in_the_exposition(service: RunningService) -> None:
    set_auth(service, auth="bearer", token=TOKEN)
    text = bare(service, headers=bearer(TOKEN)).text
    assert TOKEN not in text and PASSWORD not in text
