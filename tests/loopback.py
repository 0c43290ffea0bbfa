"""What every test level shares: the test password and free loopback ports."""

from __future__ import annotations

import socket

PASSWORD = "correct horse battery"


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
