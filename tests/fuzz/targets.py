"""Fuzz targets: the parsers that read what a stranger sends, each with the only outcomes allowed.

Each target is a hypothesis strategy and a check that returns the outcome ("accepted",
"rejected", ...) or raises AssertionError when an invariant breaks; any other exception escaping
the code under test is a finding. `test_fuzz.py` runs them briefly in `make test`, `run.py` long in
`make fuzz`. Inputs mix pure noise with mutations of valid documents and frames, so the checks get
past the first `isinstance`.
"""

from __future__ import annotations

import asyncio
import copy
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st

from homemeter import __version__
from homemeter.api.digest_auth import DigestVerifier, Refusal, parse_digest_header
from homemeter.config.app import AppConfig
from homemeter.config.modbus import ModbusConfig
from homemeter.integrations.modbus.server import ModbusServer, _Connection
from homemeter.meter.clock import MeterClock
from homemeter.meter.sampler import Meter
from homemeter.meter.snapshot import MeterSnapshot
from homemeter.meter.sources.simulator import HouseholdSimulator
from homemeter.store.backup import BackupRejected, check_document, config_document, restore_config
from homemeter.store.credentials import Credentials
from homemeter.store.device_backup import check_device_document, map_backup
from tests.device_backups import device_backup

DEVICE_ID = "fuzzdevice01"
SLOW = 0.25  # s: one example slower than this is a hang (the real ones take microseconds)


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], str]


# ----------------------------------------------------------------------------- JSON documents
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=80),
    st.sampled_from(["", "********", "0.0.0.0", "true", "2.2.1", "\x00", "<script>", "\U0001d518"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [path, *(p for k, v in doc.items() for p in _leaves(v, (*path, k)))]
    if isinstance(doc, list):
        return [path, *(p for i, v in enumerate(doc) for p in _leaves(v, (*path, i)))]
    return [path]


def _mutate(doc: Any, changes: list[tuple[tuple[Any, ...], Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for path, value in changes:
        if not path:
            return value
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value is _DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced the way there
    return doc


_DELETE = object()


def mutations(valid: Any) -> st.SearchStrategy[Any]:
    """`valid` with a few leaves or subtrees replaced, deleted or retyped; sometimes pure noise."""
    paths = _leaves(valid)
    change = st.tuples(st.sampled_from(paths), json_value | st.just(_DELETE))
    return st.lists(change, min_size=1, max_size=4).map(lambda c: _mutate(valid, c)) | json_value


# ----------------------------------------------------------------------------- configuration restore
@cache
def _current() -> AppConfig:
    return AppConfig(channels=HouseholdSimulator(seed=0, channel_count=17).factory_channels(17))


@cache
def _config_backup() -> dict[str, Any]:
    return config_document(_current(), DEVICE_ID, __version__, 0.0)


def check_config_restore(doc: Any) -> str:
    current = _current()
    try:
        section = check_document(doc, DEVICE_ID, __version__, force=False)
        restore_config(section, current, current.channels, "configuration.")
    except BackupRejected as err:
        assert str(err), "a rejection must say why"
        return "rejected"
    return "accepted"


# ----------------------------------------------------------------------------- device backup import
def check_device_import(doc: Any) -> str:
    try:
        backup = check_device_document(doc, DEVICE_ID, __version__, force=True)
        map_backup(backup.nvs, _current())
    except BackupRejected as err:
        assert str(err), "a rejection must say why"
        return "rejected"
    return "accepted"


# ----------------------------------------------------------------------------- Digest header
_param_name = st.sampled_from(
    [
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "qop",
        "nc",
        "cnonce",
        "algorithm",
        "opaque",
        "userhash",
        "x",
    ]
) | st.text(max_size=6)
_param_value = st.text(max_size=40) | st.sampled_from(['"', "\\", '\\"', ",", "=", "00000001", "auth", "MD5"])
_param = st.tuples(
    _param_name, _param_value, st.booleans(), st.sampled_from([",", ", ", " ,", ",,", "\t,", ""])
)
digest_headers = st.one_of(
    st.text(max_size=300),
    st.lists(_param, max_size=12).map(
        lambda ps: (
            "Digest " + "".join(f'{n}="{v}"{sep}' if quoted else f"{n}={v}{sep}" for n, v, quoted, sep in ps)
        )
    ),
    st.text(alphabet=' \t,="\\a', max_size=4096).map(lambda s: "Digest " + s),  # backtracking bait
)


@cache
def _verifier() -> DigestVerifier:
    creds = Credentials.from_password("correct horse battery")
    return DigestVerifier(lambda: creds, clock=time.monotonic)


def check_digest(header: str) -> str:
    started = time.perf_counter()
    params = parse_digest_header(header)
    assert params is None or all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    raw = header.encode("utf-8", "surrogatepass")
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/system/info",
        "raw_path": b"/api/v1/system/info",
        "query_string": b"",
        "headers": [(b"authorization", raw)],
    }
    result = _verifier().authenticate(scope)
    assert isinstance(result, Refusal), "a fuzzed header must never authenticate"
    assert time.perf_counter() - started < SLOW, f"parsing took {time.perf_counter() - started:.3f} s"
    return "parsed" if params is not None else "refused"


# ----------------------------------------------------------------------------- Modbus frames
def _frame(head: tuple[int, int, int, int], reading: tuple[int, int], extra: bytes) -> bytes:
    """An MBAP frame from (tid, protocol, unit, function), (start, quantity) and trailing bytes."""
    tid, proto, unit, fc = head
    pdu = struct.pack(">BBHH", unit, fc, *reading) + extra
    return struct.pack(">HHH", tid, proto, len(pdu)) + pdu


_frames = st.builds(
    _frame,
    st.tuples(
        st.integers(0, 0xFFFF),
        st.sampled_from([0, 0, 0, 1, 0xFFFF]),
        st.sampled_from([1, 1, 0, 2, 255]),
        st.sampled_from([3, 3, 3, 4, 16, 0x83, 0]),
    ),
    st.tuples(
        st.integers(0, 0xFFFF) | st.sampled_from([0, 100, 1000, 2700]),
        st.integers(0, 0xFFFF) | st.integers(0, 130),
    ),
    st.binary(max_size=4) | st.just(b""),
)
_noise = st.binary(max_size=300)
modbus_streams = st.lists(_frames | _noise, min_size=1, max_size=12).flatmap(
    lambda parts: st.tuples(st.just(b"".join(parts)), st.lists(st.integers(1, 64), min_size=1, max_size=8))
)


class _Transport:
    """What `_Connection` needs of a transport, recording what it writes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "wrote after closing"
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> None:
        return None

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


@cache
def _snapshot() -> MeterSnapshot:
    source = HouseholdSimulator(seed=0, channel_count=17)
    meter = Meter(source, source.factory_channels(17), {}, clock=MeterClock(60.0))
    meter.simulate(5.0)
    return meter.latest


_loop = asyncio.new_event_loop()


def check_modbus(stream: tuple[bytes, list[int]]) -> str:
    data, cuts = stream
    server = ModbusServer(ModbusConfig(), _snapshot)
    transport = _Transport()

    async def feed() -> None:
        conn = _Connection(server)
        conn.connection_made(transport)  # type: ignore[arg-type]
        pos = 0
        for size in cuts * (len(data) // max(1, sum(cuts)) + 1):
            if pos >= len(data) or transport.closed:
                break
            conn.data_received(data[pos : pos + size])
            pos += size
            assert len(conn._buf) < 6 + 256, "more than one partial frame buffered"
        conn.connection_lost(None)

    _loop.run_until_complete(feed())
    replies = b"".join(transport.written)
    while replies:  # every byte written belongs to a well-formed MBAP frame
        assert len(replies) >= 9, f"truncated reply {replies!r}"
        length = struct.unpack_from(">H", replies, 4)[0]
        assert len(replies) >= 6 + length and length >= 3, f"bad reply length {replies[:12]!r}"
        replies = replies[6 + length :]
    return "closed" if transport.closed else "answered"


TARGETS = (
    Target("modbus", "Modbus TCP frames (integrations/modbus/server.py)", modbus_streams, check_modbus),
    Target("digest", "Digest Authorization header (api/digest_auth.py)", digest_headers, check_digest),
    Target(
        "config-restore",
        "configuration restore (store/backup.py)",
        mutations(_config_backup()),
        check_config_restore,
    ),
    Target(
        "device-import",
        "device-backup import (store/device_backup.py)",
        mutations(device_backup(firmware="2.2.1", device_id=DEVICE_ID)),
        check_device_import,
    ),
)
