"""A private test LAN: two network namespaces joined by a veth pair, so mDNS tests never reach the host.

Inside, the server namespace has 192.0.2.1/24 and the client namespace 192.0.2.2/24 (TEST-NET-1,
RFC 5737: documentation addresses that exist only inside these namespaces), each with a multicast
route on its end of the pair and loopback up. Nothing connects them to the host's interfaces.
Creating namespaces needs root and iproute2; without them the tests using this skip, saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import PASSWORD, wait_until

IFACE = "lan0"  # the veth end in each namespace (names are per namespace)
SERVER_IP = "192.0.2.1"
CLIENT_IP = "192.0.2.2"
PREFIX = 24
WATCHER = Path(__file__).with_name("mdns_watch.py")


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def require_namespaces() -> None:
    """Skip (with the reason) where namespaces cannot be made: not root, or no `ip`."""
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip`) to create network namespaces: scripts/system-deps.sh installs it")
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces (the mDNS tests never use the host's network)")


@dataclass
class Namespace:
    name: str

    def command(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # A guard against a hang, not a deadline: starting Python takes seconds on a busy machine.
        return subprocess.run(self.command(*cmd), capture_output=True, text=True, timeout=timeout)

    def ip(self, *args: str) -> None:
        done = _ip("-n", self.name, *args)
        assert done.returncode == 0, f"ip -n {self.name} {' '.join(args)}: {done.stderr}"

    def http(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """A Digest-authenticated request from inside the namespace (curl): status and JSON body."""
        cmd = ["curl", "-s", "--max-time", "5", "--digest", "-u", f"admin:{PASSWORD}", "-X", method]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
        done = self.run(*cmd, "-w", "\n%{http_code}", url)
        text, _, code = done.stdout.rpartition("\n")
        return int(code or 0), (json.loads(text) if text.strip() else None)

    def healthy(self, url: str) -> bool:
        return self.run("curl", "-sf", "--max-time", "1", f"{url}/api/v1/health").returncode == 0


def _create(names: list[str]) -> None:
    for name in names:
        done = _ip("netns", "add", name)
        if done.returncode != 0:
            pytest.skip(f"cannot create network namespaces here: {done.stderr.strip()}")


def make_namespaces(tag: str, count: int) -> list[Namespace]:
    names = [f"hm-{os.getpid()}-{tag}{i}" for i in range(count)]
    _create(names)
    spaces = [Namespace(n) for n in names]
    for ns in spaces:
        ns.ip("link", "set", "lo", "up")
    return spaces


def delete_namespaces(spaces: list[Namespace]) -> None:
    for ns in spaces:
        _ip("netns", "del", ns.name)


def delete_stale_namespaces() -> None:
    """Delete the namespaces of test processes that are gone (a worker killed before its cleanup)."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        return
    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split(" ", 1)[0]
        match = re.fullmatch(r"hm-(\d+)-\w+", name)
        if match and not Path(f"/proc/{match[1]}").exists():
            _ip("netns", "del", name)


def join(server: Namespace, client: Namespace) -> None:
    """The veth pair, its addresses and a multicast route on each end."""
    done = _ip("link", "add", IFACE, "netns", server.name, "type", "veth", "peer", "name", IFACE,
               "netns", client.name)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for ns, address in ((server, SERVER_IP), (client, CLIENT_IP)):
        ns.ip("addr", "add", f"{address}/{PREFIX}", "dev", IFACE)
        ns.ip("link", "set", IFACE, "up")
        ns.ip("route", "add", "224.0.0.0/4", "dev", IFACE)


@dataclass
class Process:
    """A process in a namespace whose output lines are collected as they come."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def start(ns: Namespace, *cmd: str, env: dict[str, str] | None = None) -> Process:
    proc = subprocess.Popen(
        ns.command(*cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return Process(proc)


class Watcher(Process):
    """`mdns_watch.py` in the client namespace: one JSON line per service event, resolved."""

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def wait_for(
        self, what: str, test: Callable[[dict[str, Any]], bool], timeout: float = 10, since: int = 0
    ) -> dict[str, Any]:
        """The latest event passing `test`, among those from index `since` on (see `mark`)."""

        def seen() -> dict[str, Any] | None:
            return next((e for e in reversed(self.events()[since:]) if test(e)), None)

        return wait_until(seen, timeout, what=f"{what} (events: {self.events()}, stderr: {self.errors})")

    def mark(self) -> int:
        """Where the events stand now: `wait_for(..., since=mark)` ignores older ones."""
        return len(self.events())

    def latest(self, kind: str) -> dict[str, Any] | None:
        """The last event about a service of this kind ("http" or "modbus")."""
        return next((e for e in reversed(self.events()) if e["kind"] == kind), None)


def watch(ns: Namespace) -> Watcher:
    proc = subprocess.Popen(
        ns.command(sys.executable, str(WATCHER)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watcher = Watcher(proc)
    # Starting Python and zeroconf in a namespace takes seconds on a busy machine: wait, do not fail.
    wait_until(lambda: "browsing" in watcher.lines, 30, what="the mDNS watcher to start")
    return watcher


def homemeter(ns: Namespace, data_dir: Path, *args: str) -> Process:
    """`homemeter run` in the namespace, on every address (HTTP 8080 unless `args` say otherwise)."""
    cmd = [sys.executable, "-m", "homemeter.cli", "--data-dir", str(data_dir), "--log-level", "INFO", "run",
           "--bind", "0.0.0.0", "--speed", "60", *args]  # fmt: skip
    return start(ns, *cmd, env={"HOMEMETER_ADMIN_PASSWORD": PASSWORD})


@dataclass
class Lan:
    server: Namespace
    client: Namespace


def lan(tag: str) -> Iterator[Lan]:
    """A fixture body: the two namespaces joined, deleted afterwards whatever happened."""
    require_namespaces()
    spaces = make_namespaces(tag, 2)
    try:
        join(*spaces)
        yield Lan(*spaces)
    finally:
        delete_namespaces(spaces)


def wait_healthy(ns: Namespace, url: str, proc: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise AssertionError(f"homemeter exited {proc.proc.returncode}: {proc.errors} {proc.lines}")
        if ns.healthy(url):
            return
    raise AssertionError(f"homemeter did not become healthy: {proc.errors}")
