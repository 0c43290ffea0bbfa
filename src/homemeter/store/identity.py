"""The device ID: 12 lowercase hex characters, stable across restarts and upgrades.

Clients (Home Assistant's config entry, mDNS TXT, backups) use it as the device's identity. Derived
once from the host's MAC address (a random one if the host has none) and then kept in the data dir.
"""

from __future__ import annotations

import re
import secrets
import uuid
from pathlib import Path

from homemeter.store.atomic import write_atomic

_ID = re.compile(r"[0-9a-f]{12}")


def device_id(data_dir: Path) -> str:
    path = data_dir / "device-id"
    if path.exists():
        stored = path.read_text().strip()
        if _ID.fullmatch(stored):
            return stored
    node = uuid.getnode()
    # Bit 40 set means uuid invented a random node because no MAC was readable.
    ident = f"{node:012x}" if not node & (1 << 40) else secrets.token_hex(6)
    write_atomic(path, ident.encode() + b"\n")
    return ident
