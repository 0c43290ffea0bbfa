"""Logging endpoints (reference 3.8, 4.7): live levels, the kept lines, UDP syslog forwarding.

The service runs in this process, so its root logger is ours: the fixture's stop restores the levels
the tests change, and a line logged here travels the same handlers as one logged by the service.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator

import pytest
import requests

from tests.integration.conftest import RunningService

API = "/api/v1"
LINE = re.compile(
    r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \[\d+ ms\] \[(?P<level>[A-Z]+) *\] "
    r"\[pid \d+\] \[(?P<where>[^\]]+)\] (?P<message>.*)"
)


@pytest.fixture
def syslog_server() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


def test_levels_change_live_and_invalid_ones_change_nothing(service: RunningService) -> None:
    url = f"{API}/logs/level"
    start = service.get(url).json()
    root = logging.getLogger()
    for bad in ({}, {"print": "debug"}, {"print": "DEBUG", "save": "LOUD"}, {"other": "INFO"}):
        response = service.request("PUT", url, json=bad)
        assert response.status_code == 400, bad
        assert "level" in response.json()["error"]
    assert service.get(url).json() == start  # print=DEBUG was not applied alone
    assert service.request("PUT", url, data=json.dumps({"print": "INFO", "x": "y" * 64})).status_code == 413

    response = service.request("PUT", url, json={"print": "ERROR", "save": "DEBUG"})
    assert response.json()["message"] == "Log levels updated: print=ERROR save=DEBUG"
    assert root.level == logging.DEBUG  # the lower of the two reaches the handlers
    response = service.request("PATCH", url, json={"save": "FATAL"})
    assert response.json()["message"] == "Log levels partially updated: print=ERROR save=FATAL"
    assert service.get(url).json() == {"print": "ERROR", "save": "FATAL"}
    assert root.level == logging.ERROR


def test_saved_lines_follow_the_save_level(service: RunningService) -> None:
    service.request("PUT", f"{API}/logs/level", json={"save": "DEBUG"}).raise_for_status()
    # A failed login is logged at DEBUG by the Digest middleware: a real service event.
    bad_digest = requests.get(
        f"{service.url}{API}/system/info",
        auth=requests.auth.HTTPDigestAuth("admin", "wrong password"),
        timeout=5,
    )
    assert bad_digest.status_code == 401
    text = service.get(f"{API}/logs").text
    lines = [LINE.fullmatch(line) for line in text.splitlines()]
    assert lines and all(lines), text
    failed = [m for m in lines if m and "failed login" in m["message"]]
    assert failed and failed[-1]["level"] == "DEBUG"
    assert failed[-1]["where"].startswith("homemeter.api.digest_auth:")

    service.request("PUT", f"{API}/logs/level", json={"save": "WARNING"}).raise_for_status()
    assert service.request("POST", f"{API}/logs/clear").json()["message"] == "Logs cleared successfully"
    requests.get(
        f"{service.url}{API}/system/info",
        auth=requests.auth.HTTPDigestAuth("admin", "wrong password"),
        timeout=5,
    )
    response = service.get(f"{API}/logs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "failed login" not in response.text  # DEBUG is below the save level now


def test_udp_destination_forwards_syslog_live(service: RunningService, syslog_server: socket.socket) -> None:
    url = f"{API}/logs-udp-destination"
    assert service.get(url).json() == {"destination": "0.0.0.0", "port": 514}
    port = syslog_server.getsockname()[1]
    response = service.request("PUT", url, json={"destination": "127.0.0.1", "port": port})
    assert response.json()["message"] == "UDP destination updated successfully"
    assert json.loads((service.data_dir / "config.json").read_text())["udpLog"] == {
        "destination": "127.0.0.1", "port": port,
    }  # fmt: skip

    logging.getLogger("homemeter.test").warning("marker %d", 42)
    datagram = syslog_server.recv(4096).decode()
    # <PRI> = facility user (1) * 8 + severity warning (4); then RFC 5424 fields.
    assert re.fullmatch(r"<12>1 \S+Z \S+ homemeter \d+ - - homemeter\.test: marker 42", datagram)

    service.request("PUT", url, json={"destination": "0.0.0.0"}).raise_for_status()
    logging.getLogger("homemeter.test").warning("not forwarded")
    syslog_server.settimeout(0.3)
    with pytest.raises(TimeoutError):
        syslog_server.recv(4096)


def test_udp_destination_rejects_bad_input_and_keeps_the_old_one(service: RunningService) -> None:
    url = f"{API}/logs-udp-destination"
    service.request("PUT", url, json={"destination": "192.0.2.7"}).raise_for_status()
    cases = {
        "Missing 'destination' field": ({"host": "192.0.2.8"}, [1]),
        "Invalid IP address format": ({"destination": "999.1.1.1"}, {"destination": "fe80::1"}),
    }
    for message, bodies in cases.items():
        for body in bodies:
            response = service.request("PUT", url, json=body)
            assert (response.status_code, response.json()["error"]) == (400, message), body
    response = service.request("PUT", url, json={"destination": "192.0.2.8", "port": 70000})
    assert response.status_code == 400 and "port" in response.json()["error"]
    assert service.get(url).json() == {"destination": "192.0.2.7", "port": 514}
