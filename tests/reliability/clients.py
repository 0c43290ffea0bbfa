"""Clients that load the service: Digest HTTP pollers, Modbus pollers reading every block, and the
hostile kinds (idle sockets, slowloris headers, oversize bodies, password guessers).

Threads, not asyncio: the service runs in its own process, so the clients only need to be many and
cheap, and a blocking socket per client is the simplest honest client.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from itertools import count

import requests

from homemeter.integrations.modbus.register_map import WIDTH, register_map
from tests.reliability.report import Tally

HTTP_PATHS = ("/api/v1/ade7953/meter-values", "/api/v1/system/info")
MAX_QUANTITY = 125  # FC03


def modbus_blocks(channel_count: int) -> list[tuple[int, int]]:
    """(start, quantity) reads covering every register of the map, each at most 125 registers."""
    runs: list[list[int]] = []
    for reg in register_map(channel_count):
        end = reg.address + WIDTH[reg.dtype]
        if runs and runs[-1][1] == reg.address and end - runs[-1][0] <= MAX_QUANTITY:
            runs[-1][1] = end
        else:
            runs.append([reg.address, end])
    return [(start, end - start) for start, end in runs]


def http_poller(
    url: str, session: requests.Session, stop: threading.Event, tally: Tally, period: float
) -> None:
    """Poll meter-values and system info in turn every `period` s until `stop`."""
    stop.wait(random.uniform(0, period))  # spread the clients over the period
    for n in count():
        if stop.is_set():
            break
        started = time.monotonic()
        try:
            r = session.get(url + HTTP_PATHS[n % 2], timeout=10)
        except requests.RequestException:
            tally.add("http_errors")
        else:
            tally.add("http_requests")
            tally.peak("http_latency_s", time.monotonic() - started)
            if r.status_code >= 500:
                tally.add("http_5xx")
            elif r.status_code != 200:
                tally.add("http_other")
        stop.wait(max(0.0, period - (time.monotonic() - started)))
    session.close()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def modbus_read(sock: socket.socket, tid: int, start: int, quantity: int) -> bytes:
    """One FC03 read; the register bytes, or ValueError for any answer that is not them."""
    sock.sendall(struct.pack(">HHHBBHH", tid, 0, 6, 1, 3, start, quantity))
    head = recv_exact(sock, 6)
    rtid, proto, length = struct.unpack(">HHH", head)
    body = recv_exact(sock, length)
    if rtid != tid or proto != 0 or body[1] != 3 or body[2] != 2 * quantity:
        raise ValueError(f"bad reply to read {start}+{quantity}: {head + body!r}")
    return body[3:]


def modbus_poller(
    port: int, blocks: list[tuple[int, int]], stop: threading.Event, tally: Tally, period: float
) -> None:
    """Read every block every `period` s on one connection (reconnecting if it is closed)."""
    stop.wait(random.uniform(0, period))
    sock: socket.socket | None = None
    tid = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            for start, quantity in blocks:
                tid = (tid + 1) & 0xFFFF
                modbus_read(sock, tid, start, quantity)
                tally.add("modbus_reads")
            tally.peak("modbus_cycle_s", time.monotonic() - started)
        except (OSError, ValueError):
            tally.add("modbus_errors")
            if sock is not None:
                sock.close()
            sock = None
        stop.wait(max(0.0, period - (time.monotonic() - started)))
    if sock is not None:
        sock.close()


def run_threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t, daemon=True, name=f"client-{i}") for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    return threads


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the server closes `sock` (EOF or reset) within `timeout` s."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True
