"""mDNS as a client on the LAN sees it: `homemeter run` in one network namespace, a zeroconf browser
(and `homemeter discover`) in another, joined by a veth pair (tests/e2e/netns.py). Nothing is sent on
the host's own network.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homemeter import __version__
from tests.e2e.netns import (
    SERVER_IP,
    Lan,
    Namespace,
    Process,
    delete_namespaces,
    homemeter,
    lan,
    make_namespaces,
    require_namespaces,
    start,
    wait_healthy,
    watch,
)
from tests.loopback import wait_until

pytestmark = pytest.mark.timeout(120)

URL = "http://127.0.0.1:8080"
SECOND_IP = "198.51.100.1"  # TEST-NET-2: another subnet, so it outlives 192.0.2.1
MODBUS = {"enabled": True, "bind": "0.0.0.0", "port": 5020, "idleTimeout": 60.0, "maxClients": 64}


@pytest.fixture
def test_lan() -> Iterator[Lan]:
    yield from lan("m")


def run_homemeter(ns: Namespace, data_dir: Path, *args: str, url: str = URL) -> Process:
    proc = homemeter(ns, data_dir, "--http-port", url.rsplit(":", 1)[1], "--modbus-port", "5020", *args)
    wait_healthy(ns, url, proc)
    return proc


def is_up(kind: str, **expect: Any) -> Any:
    """An added/updated event for `kind` whose fields have the expected values."""
    return lambda e: (
        e["kind"] == kind
        and e["event"] in ("added", "updated")
        and all(e.get(k) == v for k, v in expect.items())
    )


def is_removed(kind: str) -> Any:
    return lambda e: e["kind"] == kind and e["event"] == "removed"


def discover(ns: Namespace, *args: str) -> list[dict[str, Any]]:
    """`homemeter discover --json` in the namespace."""
    done = ns.run(sys.executable, "-m", "homemeter.cli", "discover", "--timeout", "1.5", "--json", *args)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def mdns_status(ns: Namespace, url: str = URL) -> dict[str, Any]:
    code, body = ns.http("GET", f"{url}/api/v1/mdns/status")
    assert code == 200, body
    return dict(body)


def test_both_services_resolve_with_every_txt_key_and_leave_with_goodbyes(
    test_lan: Lan, tmp_path: Path
) -> None:
    watcher = watch(test_lan.client)
    server = run_homemeter(test_lan.server, tmp_path / "data")
    try:
        http = watcher.wait_for("the HTTP service", is_up("http"))
        modbus = watcher.wait_for("the Modbus service", is_up("modbus"))
        _, info = test_lan.server.http("GET", f"{URL}/api/v1/system/info")
        device_id = info["static"]["device"]["id"]
        common = {"device_id": device_id, "vendor": "EnergyMe", "model": "homemeter", "version": __version__}
        assert (http["host"], http["addresses"], http["port"]) == ("homemeter.local.", [SERVER_IP], 8080)
        assert http["txt"] == {**common, "path": "/", "auth": "required", "ssl": "false"}
        assert (modbus["host"], modbus["addresses"], modbus["port"]) == (
            "homemeter.local.",
            [SERVER_IP],
            5020,
        )
        assert modbus["txt"] == {**common, "channels": "17"}
        assert info["dynamic"]["network"]["mdnsHostname"] == "homemeter.local"

        status = wait_until(
            lambda: (s := mdns_status(test_lan.server))["state"] == "running" and s, 5, what="running"
        )
        assert (status["hostname"], status["addresses"]) == ("homemeter.local", [SERVER_IP])
        assert {s["kind"]: s["port"] for s in status["services"]} == {"http": 8080, "modbus": 5020}
        # Home Assistant would discover this host and then fail on port 80: the status and the log say so.
        assert any("port 80" in w for w in status["warnings"])
        assert any("port 80" in line for line in server.errors), server.errors
        _, issues = test_lan.server.http("GET", f"{URL}/api/v1/system/issues")
        assert "mdns_home_assistant_port" in json.dumps(issues)

        listed = {s["kind"]: s for s in discover(test_lan.client)}
        assert listed["http"]["port"] == 8080 and listed["modbus"]["port"] == 5020
        assert listed["http"]["addresses"] == [SERVER_IP] and listed["http"]["txt"] == http["txt"]

        assert server.stop() == 0
        watcher.wait_for("the HTTP goodbye", is_removed("http"), timeout=5)
        watcher.wait_for("the Modbus goodbye", is_removed("modbus"), timeout=5)
    finally:
        server.stop()
        watcher.stop()


def test_changes_are_announced_live(test_lan: Lan, tmp_path: Path) -> None:
    watcher = watch(test_lan.client)
    server = run_homemeter(test_lan.server, tmp_path / "data")
    ns = test_lan.server
    try:
        watcher.wait_for("the Modbus service", is_up("modbus", port=5020))
        # Modbus moves: the advertised port follows.
        assert ns.http("PUT", f"{URL}/api/v1/modbus/config", {**MODBUS, "port": 5021})[0] == 200
        watcher.wait_for("the new Modbus port", is_up("modbus", port=5021))
        assert {s["kind"]: s["port"] for s in mdns_status(ns)["services"]}["modbus"] == 5021

        # A new address is announced; a lost one is withdrawn.
        ns.ip("addr", "add", f"{SECOND_IP}/24", "dev", "lan0")
        watcher.wait_for("the new address", is_up("http", addresses=[SERVER_IP, SECOND_IP]))
        ns.ip("addr", "del", f"{SERVER_IP}/24", "dev", "lan0")
        # No goodbye can leave through a vanished address; the new announcement's cache-flush bit
        # makes clients drop it within a second (RFC 6762 10.2). A fresh browser sees only the new one.
        wait_until(
            lambda: {s["kind"]: s["addresses"] for s in discover(test_lan.client)}.get("http") == [SECOND_IP],
            10,
            what="only the remaining address",
        )
        ns.ip("addr", "add", f"{SERVER_IP}/24", "dev", "lan0")  # curl and the rest go on as before

        # Switched off live: goodbyes (new ones: the port move above removed a service too); on again
        # under another name.
        mark = watcher.mark()
        assert ns.http("PATCH", f"{URL}/api/v1/mdns/config", {"enabled": False})[0] == 200
        watcher.wait_for("the HTTP goodbye", is_removed("http"), since=mark)
        watcher.wait_for("the Modbus goodbye", is_removed("modbus"), since=mark)
        status = wait_until(lambda: (s := mdns_status(ns))["services"] == [] and s, 5, what="none advertised")
        assert (status["state"], status["disabledBy"], status["services"]) == (
            "disabled",
            "configuration",
            [],
        )
        assert (
            ns.http("PATCH", f"{URL}/api/v1/mdns/config", {"enabled": True, "hostname": "meter-two"})[0]
            == 200
        )
        watcher.wait_for("the new name", is_up("http", host="meter-two.local."))
        _, config = ns.http("GET", f"{URL}/api/v1/mdns/config")
        assert config == {"enabled": True, "hostname": "meter-two.local", "vendor": "EnergyMe"}

        # Modbus off: only its service goes.
        assert ns.http("PUT", f"{URL}/api/v1/modbus/config", {**MODBUS, "enabled": False})[0] == 200
        watcher.wait_for("the Modbus goodbye", lambda e: is_removed("modbus")(e) and "meter-two" in e["name"])
        wait_until(lambda: [s["kind"] for s in mdns_status(ns)["services"]] == ["http"], 5, what="http only")
    finally:
        server.stop()
        watcher.stop()


SQUATTER = """
import asyncio, signal
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with AsyncZeroconf(ip_version=IPVersion.V4Only) as azc:
        info = AsyncServiceInfo("_http._tcp.local.", "homemeter._http._tcp.local.", port=80,
                                properties={"vendor": "other"}, server="homemeter.local.",
                                parsed_addresses=["192.0.2.2"])
        await (await azc.async_register_service(info))
        print("registered", flush=True)
        await stop.wait()

asyncio.run(main())
"""


def test_a_taken_name_gets_a_numbered_alternative(test_lan: Lan, tmp_path: Path) -> None:
    """Another host already answers for homemeter.local: we become homemeter-2.local, on port 80."""
    squatter = start(test_lan.client, sys.executable, "-c", SQUATTER)
    url = "http://127.0.0.1:80"
    server: Process | None = None
    try:
        wait_until(lambda: "registered" in squatter.lines, 10, what=f"the squatter ({squatter.errors})")
        server = run_homemeter(test_lan.server, tmp_path / "data", url=url)
        status = wait_until(
            lambda: (
                (s := mdns_status(test_lan.server, url))["state"] == "running"
                and len(s["services"]) == 2
                and s
            ),
            10,
            what="both services advertised",
        )
        assert status["hostname"] == "homemeter-2.local"
        assert {s["name"] for s in status["services"]} == {
            "homemeter-2._http._tcp.local.", "homemeter-2._modbus._tcp.local.",
        }  # fmt: skip
        assert status["warnings"] == []  # HTTP on port 80: Home Assistant can connect
        _, info = test_lan.server.http("GET", f"{url}/api/v1/system/info")
        assert info["dynamic"]["network"]["mdnsHostname"] == "homemeter-2.local"
        assert any("homemeter.local" in line and "taken" in line for line in server.errors)
    finally:
        if server is not None:
            server.stop()
        squatter.stop()


def test_a_network_without_multicast_gives_a_status_not_a_crash(tmp_path: Path) -> None:
    require_namespaces()
    (alone,) = make_namespaces("solo", 1)  # loopback only: no interface can multicast
    server: Process | None = None
    try:
        server = run_homemeter(alone, tmp_path / "data")
        status = wait_until(
            lambda: (s := mdns_status(alone))["state"] == "degraded" and s, 10, what="a degraded mDNS status"
        )
        assert "multicast" in status["lastError"] and status["addresses"] == ["127.0.0.1"]
        assert any("level=warning" in line and "multicast" in line for line in server.errors)
        _, issues = alone.http("GET", f"{URL}/api/v1/system/issues")
        assert "mdns_unavailable" in json.dumps(issues)
        assert alone.http("GET", f"{URL}/api/v1/ade7953/meter-values")[0] == 200  # the rest works
        assert server.stop() == 0
    finally:
        if server is not None:
            server.stop()
        delete_namespaces([alone])
