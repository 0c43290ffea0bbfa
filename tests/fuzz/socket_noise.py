"""Random bytes on a live Modbus socket: only that connection closes; the others read on."""

from __future__ import annotations

import random
import socket

from tests.reliability.clients import closed_by_peer, modbus_read
from tests.reliability.report import Row
from tests.reliability.service import Homemeter


def modbus_noise(svc: Homemeter, connections: int = 50, seed: int = 7) -> list[Row]:
    rng = random.Random(seed)
    closed = answered = 0
    with socket.create_connection(("127.0.0.1", svc.modbus_port), timeout=5) as bystander:
        bystander_ok = 0
        for n in range(connections):
            noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600)))
            with socket.create_connection(("127.0.0.1", svc.modbus_port), timeout=5) as s:
                s.sendall(noise)
                s.shutdown(socket.SHUT_WR)  # nothing more comes: the server answers or closes
                closed += closed_by_peer(s, 5)
            bystander_ok += len(modbus_read(bystander, n & 0xFFFF, 0, 8)) == 16
        answered = bystander_ok
    return [
        Row(
            "fuzz",
            "random bytes on the Modbus socket",
            connections,
            closed,
            f"{closed} noisy connections ended by the server (answered or closed, none left hanging)",
        ),
        Row(
            "fuzz",
            "Modbus bystander reads between them",
            connections,
            answered,
            "one well-behaved client on its own connection the whole time",
        ),
    ]
