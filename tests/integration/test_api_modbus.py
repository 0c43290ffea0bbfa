"""`/api/v1/modbus/*` against the running service, checked with a real pymodbus client.

The register map download must describe what the server answers, and configuration changes must
move, stop and start the server live, or leave everything as it was when they cannot be applied.
"""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from tests.integration.conftest import RunningService, free_port, start_service

MAP = "/api/v1/modbus/register-map"
CONFIG = "/api/v1/modbus/config"
STATUS = "/api/v1/modbus/status"
CHANNELS = 17


def client(port: int) -> ModbusTcpClient:
    return ModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)


def answers(port: int) -> bool:
    """True when a Modbus server on `port` answers a read of the voltage register."""
    c = client(port)
    try:
        if not c.connect():
            return False
        rr = c.read_holding_registers(100, count=2, device_id=1)
        return not rr.isError()
    finally:
        c.close()


def refuses(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def stored(service: RunningService) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((service.data_dir / "config.json").read_bytes())
    return doc


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.capitalize() for w in rest)


@pytest.fixture
def blocker() -> Iterator[int]:
    """A loopback port held by someone else (a listening socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def test_register_map_json_and_csv_list_the_same_registers(service: RunningService) -> None:
    rows = service.get(MAP).json()
    assert len(rows) == 4 + 5 * 9 + CHANNELS * 10
    assert rows[0] == {
        "address": 0,
        "name": "timestamp",
        "type": "uint64",
        "unit": "s",
        "decimals": 0,
        "description": rows[0]["description"],
    }
    assert rows[-1]["name"] == f"channel_{CHANNELS - 1}_apparent_energy"
    assert [r["address"] for r in rows] == sorted(r["address"] for r in rows)

    r = service.get(MAP + ".csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="homemeter-modbus-registers.csv"'
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert table == [{k: str(v) for k, v in row.items()} for row in rows]


def test_registers_listed_in_the_csv_decode_to_the_rest_meter_values(service: RunningService) -> None:
    table = list(csv.DictReader(io.StringIO(service.get(MAP + ".csv").text)))
    # One window per real second (60 s simulated at speed 60): REST, Modbus, REST again, and keep
    # the first round in which both REST reads show the same snapshot. A new snapshot between the
    # three reads only costs another round; it can never make a wrong value pass.
    service.request("PUT", "/api/v1/ade7953/sample-time", json={"sampleTime": 60_000}).raise_for_status()
    c = client(service.modbus_port)
    assert c.connect()
    try:
        for _ in range(20):
            before = service.get("/api/v1/ade7953/meter-values").json()
            regs: dict[int, int] = {}
            blocks = [(100, 4)] + [(1000 + 100 * ch, 20) for ch in range(CHANNELS)]
            for start, count in blocks:
                rr = c.read_holding_registers(start, count=count, device_id=1)
                assert not rr.isError()
                regs.update({start + i: w for i, w in enumerate(rr.registers)})
            after = service.get("/api/v1/ade7953/meter-values").json()
            if before == after:
                break
        else:
            pytest.fail("the meter published a new snapshot during every one of 20 rounds")
    finally:
        c.close()
    live = [ch for ch in before if ch["data"]["current"] > 0]
    assert live, before  # a meter that measures something, not a table of zeros
    checked = 0
    for ch in live:
        prefix = f"channel_{ch['index']}_"
        for row in (r for r in table if r["name"].startswith(prefix)):
            address = int(row["address"])
            words = [regs[address], regs[address + 1]]
            value = c.convert_from_registers(words, c.DATATYPE.FLOAT32, word_order="big")
            expected = ch["data"][camel(row["name"].removeprefix(prefix))]
            # Both sides round to the register's decimals; float32 adds at most 6e-8 relative.
            assert value == pytest.approx(expected, rel=1e-6, abs=0.5 * 10 ** -int(row["decimals"]))
            checked += 1
    voltage = next(r for r in table if r["name"] == "voltage")
    value = c.convert_from_registers([regs[100], regs[101]], c.DATATYPE.FLOAT32, word_order="big")
    assert value == pytest.approx(before[0]["data"]["voltage"], abs=0.05) and voltage["address"] == "100"
    assert checked == 10 * len(live)


def test_config_round_trip_persists_and_survives_a_restart(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert service.get(CONFIG).json() == {
        "enabled": True,
        "bind": "0.0.0.0",
        "port": 502,
        "idleTimeout": 60.0,
        "maxClients": 64,
    }
    r = service.request("PATCH", CONFIG, json={"maxClients": 5, "idleTimeout": 30})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Modbus configuration updated successfully"}
    changed = {"enabled": True, "bind": "0.0.0.0", "port": 502, "idleTimeout": 30.0, "maxClients": 5}
    assert service.get(CONFIG).json() == changed
    assert stored(service)["modbus"] == changed
    assert answers(service.modbus_port)  # nothing moved: --modbus-port still wins over 502

    service.stop()
    again = start_service(service.data_dir, monkeypatch)
    try:
        assert again.get(CONFIG).json() == changed
        assert answers(again.modbus_port)
    finally:
        again.stop()


def test_put_replaces_the_whole_object(service: RunningService) -> None:
    port = free_port()
    body = {"enabled": True, "bind": "127.0.0.1", "port": port, "idleTimeout": 5, "maxClients": 2}
    r = service.request("PUT", CONFIG, json=body)
    assert r.status_code == 200, r.text
    assert service.get(CONFIG).json() == {**body, "idleTimeout": 5.0}
    assert answers(port) and refuses(service.modbus_port)


def test_moving_the_port_moves_the_server(service: RunningService) -> None:
    old, new = service.modbus_port, free_port()
    assert answers(old)
    assert service.request("PATCH", CONFIG, json={"port": new}).status_code == 200
    assert refuses(old)
    assert answers(new)
    status = service.get(STATUS).json()
    assert status["state"] == "listening" and status["port"] == new
    assert status["requests"] >= 2  # counters carry over the move
    assert stored(service)["modbus"]["port"] == new


def test_a_port_in_use_is_refused_and_changes_nothing(service: RunningService, blocker: int) -> None:
    before_file = (service.data_dir / "config.json").read_bytes()
    before = service.get(CONFIG).json()
    r = service.request("PATCH", CONFIG, json={"port": blocker})
    assert r.status_code == 409
    assert r.json()["success"] is False
    assert f"127.0.0.1:{blocker}" in r.json()["error"] and r.json()["error"].startswith("port:")
    assert service.get(CONFIG).json() == before
    assert (service.data_dir / "config.json").read_bytes() == before_file
    assert answers(service.modbus_port)
    assert service.get(STATUS).json()["port"] == service.modbus_port


def test_a_new_address_on_the_same_port(service: RunningService) -> None:
    port = service.modbus_port
    # 192.0.2.1 (TEST-NET-1) is on no interface: the same port cannot move there. The old socket was
    # closed first (same port), so this checks it is listening again afterwards.
    r = service.request("PATCH", CONFIG, json={"bind": "192.0.2.1"})
    assert r.status_code == 409 and f"192.0.2.1:{port}" in r.json()["error"]
    assert answers(port)
    assert service.get(CONFIG).json()["bind"] == "0.0.0.0"
    # Another loopback address on the same port: the server moves there.
    assert service.request("PATCH", CONFIG, json={"bind": "127.0.0.2"}).status_code == 200
    assert refuses(port)
    other = ModbusTcpClient("127.0.0.2", port=port, timeout=3, retries=0)
    try:
        assert other.connect() and not other.read_holding_registers(100, count=2).isError()
    finally:
        other.close()
    assert service.get(STATUS).json()["bind"] == "127.0.0.2"


def test_disabling_stops_the_server_and_enabling_starts_it(service: RunningService) -> None:
    port = service.modbus_port
    assert service.request("PATCH", CONFIG, json={"enabled": False}).status_code == 200
    assert refuses(port)
    status = service.get(STATUS).json()
    assert (status["state"], status["clients"]) == ("stopped", 0)
    assert stored(service)["modbus"]["enabled"] is False
    assert service.request("PATCH", CONFIG, json={"enabled": True}).status_code == 200
    assert answers(port)  # the command-line port still applies: the port field was not changed
    assert service.get(STATUS).json()["state"] == "listening"


def test_client_limits_apply_without_dropping_connected_clients(service: RunningService) -> None:
    first = client(service.modbus_port)
    assert first.connect()
    try:
        assert not first.read_holding_registers(100, count=2, device_id=1).isError()
        assert service.request("PATCH", CONFIG, json={"maxClients": 1}).status_code == 200
        assert not first.read_holding_registers(100, count=2, device_id=1).isError()  # still served
        with socket.create_connection(("127.0.0.1", service.modbus_port), timeout=3) as second:
            assert second.recv(1) == b""  # over the new limit: accepted and closed at once
        assert service.get(STATUS).json()["rejected"] == 1
    finally:
        first.close()


FULL = {"enabled": True, "bind": "0.0.0.0", "port": 1502, "idleTimeout": 60, "maxClients": 4}

# (method, body, the field the 400 must name); one service for all of them: none changes anything.
INVALID = [
    ("PUT", {k: v for k, v in FULL.items() if k != "maxClients"}, "maxClients"),
    ("PUT", {**FULL, "extra": 1}, "extra"),  # no legacy client here: unknown keys are errors
    ("PATCH", {"port": "1502"}, "port"),
    ("PATCH", {"port": 1502.0}, "port"),
    ("PATCH", {"port": 70000}, "port"),
    ("PATCH", {"enabled": 1}, "enabled"),
    ("PATCH", {"maxClients": 0}, "maxClients"),
    ("PATCH", {"idleTimeout": 0.5}, "idleTimeout"),
    ("PATCH", {"bind": "not an address"}, "bind"),
    ("PATCH", {}, "body"),
    ("PATCH", [1502], "body"),
]


def test_invalid_bodies_name_the_field_and_change_nothing(service: RunningService) -> None:
    before_file = (service.data_dir / "config.json").read_bytes()
    before = service.get(CONFIG).json()
    for method, body, field in INVALID:
        r = service.request(method, CONFIG, json=body)
        assert r.status_code == 400, (method, body)
        assert r.json()["success"] is False and r.json()["error"].startswith(f"{field}:"), r.json()
    assert service.get(CONFIG).json() == before
    assert (service.data_dir / "config.json").read_bytes() == before_file
    assert answers(service.modbus_port)


def test_bad_json_and_oversized_bodies_are_refused(service: RunningService) -> None:
    headers = {"Content-Type": "application/json"}
    r = service.request("PATCH", CONFIG, data=b'{"port": 15', headers=headers)
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid JSON")
    r = service.request("PUT", CONFIG, data=b'{"bind": "' + b"x" * 400 + b'"}', headers=headers)
    assert r.status_code == 413
    assert service.get(CONFIG).json()["port"] == 502
