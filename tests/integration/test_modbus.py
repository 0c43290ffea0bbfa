"""The real Modbus server on a free loopback port against a real pymodbus client (and raw sockets
where pymodbus cannot send the frame: other unit ids, garbage, pipelining)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
import uvloop
from pymodbus.client import AsyncModbusTcpClient

from homemeter.config.modbus import ModbusConfig
from homemeter.config.roles import AGGREGATE_ROLES, Phase, Role
from homemeter.errors import PortInUse
from homemeter.integrations.modbus.server import ModbusServer
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot, RoleAggregate, round_half_away

CHANNELS = 17
ROLES = (Role.GRID, Role.PV, Role.BATTERY, Role.INVERTER)  # channels 0-3; the rest are loads

# The reference tables (integrations.md 1.5), written out: (offset, attribute, decimals).
AGGREGATE_BLOCK = [
    (0, "active_power", 1),
    (2, "reactive_power", 1),
    (4, "apparent_power", 1),
    (6, "power_factor", 3),
    (8, "active_energy_imported", 1),
    (10, "active_energy_exported", 1),
    (12, "reactive_energy_imported", 1),
    (14, "reactive_energy_exported", 1),
    (16, "apparent_energy", 1),
]
CHANNEL_BLOCK = [(0, "current", 3)] + [(o + 2, a, d) for o, a, d in AGGREGATE_BLOCK]
ROLE_BASES = {Role.GRID: 200, Role.LOAD: 300, Role.PV: 400, Role.BATTERY: 500, Role.INVERTER: 600}


def make_snapshot(seq: int, shift: float) -> MeterSnapshot:
    """Every channel and quantity distinct; `shift` makes a second snapshot differ everywhere."""
    channels = []
    for c in range(CHANNELS):
        base = shift + 10.0 * c
        sign = -1.0 if c in (0, 2) else 1.0  # grid exporting, battery charging
        channels.append(
            ChannelReading(
                index=c,
                label=f"Channel {c}",
                phase=Phase.L1,
                group_label="",
                role=ROLES[c] if c < len(ROLES) else Role.LOAD,
                active=c != 16,  # an inactive channel is still served, but not aggregated
                voltage=230.1,
                current=0.123456 + c + shift / 100,
                active_power=sign * (101.26 + base),
                apparent_power=151.04 + base,
                reactive_power=-(21.55 + base),
                power_factor=sign * (0.6664 - c / 100 + shift / 1000),
                active_energy_imported=1000.26 + base,
                active_energy_exported=2000.14 + base,
                reactive_energy_imported=3000.37 + base,
                reactive_energy_exported=4000.48 + base,
                apparent_energy=5000.59 + base,
                last_reading_ms=1_767_225_600_000,
            )
        )
    readings = tuple(channels)
    return MeterSnapshot(
        seq=seq,
        taken_at=1_767_225_600.75 + shift,
        uptime_ms=9_876_543_210 + int(shift),
        voltage=230.14 + shift,
        grid_frequency=50.0125 + shift / 1000,
        channels=readings,
        aggregates=tuple(RoleAggregate.of(role, readings) for role in AGGREGATE_ROLES),
    )


def expected_values(snap: MeterSnapshot) -> dict[int, tuple[str, float | int]]:
    """address -> (type, value as the device encodes it), from the reference tables."""
    out: dict[int, tuple[str, float | int]] = {
        0: ("uint64", int(snap.taken_at)),
        4: ("uint64", snap.uptime_ms),
        100: ("float32", f32(round_half_away(snap.voltage, 1))),
        102: ("float32", f32(round_half_away(snap.grid_frequency, 3))),
    }
    for role, base in ROLE_BASES.items():
        agg = snap.aggregate(role)
        for offset, attr, decimals in AGGREGATE_BLOCK:
            out[base + offset] = ("float32", f32(round_half_away(getattr(agg, attr), decimals)))
    for ch in snap.channels:
        for offset, attr, decimals in CHANNEL_BLOCK:
            value = f32(round_half_away(getattr(ch, attr), decimals))
            out[1000 + 100 * ch.index + offset] = ("float32", value)
    return out


def f32(value: float) -> float:
    result: float = struct.unpack(">f", struct.pack(">f", value))[0]
    return result


BLOCKS = [(0, 8), (100, 4)] + [(b, 18) for b in ROLE_BASES.values()]
BLOCKS += [(1000 + 100 * c, 20) for c in range(CHANNELS)]


@pytest.fixture
def current() -> list[MeterSnapshot]:
    """What `latest()` returns; a test swaps the element to publish a new snapshot."""
    return [make_snapshot(1, 0.0)]


def loopback(**changes: Any) -> ModbusConfig:
    # model_copy does not validate, which is what lets tests ask for port 0 (any free port).
    return ModbusConfig().model_copy(update={"bind": "127.0.0.1", "port": 0, **changes})


@pytest.fixture
async def server(current: list[MeterSnapshot]) -> AsyncIterator[ModbusServer]:
    async with ModbusServer(loopback(), lambda: current[0]) as srv:
        yield srv


@contextlib.asynccontextmanager
async def pymodbus_client(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
    try:
        assert await client.connect()
        yield client
    finally:
        client.close()


@pytest.fixture
async def client(server: ModbusServer) -> AsyncIterator[AsyncModbusTcpClient]:
    async with pymodbus_client(server.port) as c:
        yield c


def request(tid: int, start: int, count: int, unit: int = 1, fc: int = 3) -> bytes:
    return struct.pack(">HHHBBHH", tid, 0, 6, unit, fc, start, count)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """One MBAP frame: (transaction id, unit, PDU)."""
    tid, proto, length = struct.unpack(">HHH", await reader.readexactly(6))
    assert proto == 0
    body = await reader.readexactly(length)
    return tid, body[0], body[1:]


async def read_all(client: AsyncModbusTcpClient) -> dict[int, tuple[str, float | int]]:
    got: dict[int, tuple[str, float | int]] = {}
    for start, count in BLOCKS:
        rr = await client.read_holding_registers(start, count=count, device_id=1)
        assert not rr.isError(), (start, count, rr)
        regs = rr.registers
        assert len(regs) == count
        i = 0
        while i < count:
            kind = "uint64" if start + i in (0, 4) else "float32"
            width = 4 if kind == "uint64" else 2
            dtype = client.DATATYPE.UINT64 if kind == "uint64" else client.DATATYPE.FLOAT32
            value = client.convert_from_registers(regs[i : i + width], dtype, word_order="big")
            assert isinstance(value, int | float)
            got[start + i] = (kind, value)
            i += width
    return got


async def test_every_register_decodes_to_the_snapshot_value(
    client: AsyncModbusTcpClient, current: list[MeterSnapshot]
) -> None:
    expected = expected_values(current[0])
    assert await read_all(client) == expected
    assert len(expected) == 4 + 5 * 9 + CHANNELS * 10


async def test_a_new_snapshot_is_served_after_the_swap(
    client: AsyncModbusTcpClient, current: list[MeterSnapshot], server: ModbusServer
) -> None:
    before = await read_all(client)
    current[0] = make_snapshot(2, 7.5)
    after = await read_all(client)
    assert after == expected_values(current[0])
    changed = [a for a in after if after[a] != before[a]]
    assert len(changed) == len(after)  # every single value differs between the two snapshots
    assert server.requests == 2 * len(BLOCKS) and server.errors == 0


async def test_reference_request_response_example(server: ModbusServer) -> None:
    # integrations.md 1.4: PDU 03 00 64 00 04 -> 03 08 43 66 19 9A 42 48 0C 4A
    snap = make_snapshot(3, 0.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        server._latest = lambda: _with(snap, voltage=230.1, grid_frequency=50.012)
        writer.write(request(0x1234, 100, 4))
        assert await read_frame(reader) == (0x1234, 1, bytes.fromhex("03084366199A42480C4A"))
        writer.write(request(0x1235, 104, 1))
        assert await read_frame(reader) == (0x1235, 1, bytes.fromhex("8302"))
    finally:
        writer.close()


def _with(snap: MeterSnapshot, **changes: float) -> MeterSnapshot:
    return replace(snap, **changes)  # type: ignore[arg-type]


async def test_exception_codes_via_pymodbus(client: AsyncModbusTcpClient) -> None:
    rr = await client.read_input_registers(100, count=2, device_id=1)  # FC 04
    assert rr.isError() and rr.exception_code == 0x01
    rr = await client.read_holding_registers(104, count=1, device_id=1)
    assert rr.isError() and rr.exception_code == 0x02
    # count 126 (exception 03) is refused by pymodbus itself: the raw-socket test sends it.
    rr = await client.read_holding_registers(1019, count=2, device_id=1)  # runs into a gap
    assert rr.isError() and rr.exception_code == 0x02
    rr = await client.read_holding_registers(101, count=2, device_id=1)  # straddles two floats
    assert not rr.isError()


@pytest.mark.parametrize(
    ("frame", "reply_pdu"),
    [
        (request(7, 100, 2, unit=2), "83E1"),
        (request(7, 100, 2, unit=0), "83E1"),
        (request(7, 100, 2, unit=255), "83E1"),
        (request(7, 100, 2, fc=4), "8401"),
        (request(7, 100, 2, fc=6), "8601"),
        (request(7, 100, 0), "8303"),
        (request(7, 100, 126), "8303"),
        (request(7, 8, 1), "8302"),
        (request(7, 2620, 1), "8302"),  # past the last of 17 channel blocks
        (struct.pack(">HHHBBH", 7, 0, 4, 1, 3, 100), "8303"),  # truncated PDU: quantity reads 0
    ],
)
async def test_exception_codes_raw(server: ModbusServer, frame: bytes, reply_pdu: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(frame)
        tid, unit, pdu = await read_frame(reader)
        assert (tid, unit, pdu) == (7, frame[6], bytes.fromhex(reply_pdu))
    finally:
        writer.close()


async def test_channel_blocks_follow_the_channel_count(current: list[MeterSnapshot]) -> None:
    snap = current[0]
    current[0] = _with_channels(snap, 16)
    async with ModbusServer(loopback(), lambda: current[0]) as srv, pymodbus_client(srv.port) as c:
        assert (await c.read_holding_registers(2600, count=2)).exception_code == 0x02
        assert not (await c.read_holding_registers(2500, count=20)).isError()
        current[0] = snap  # back to 17 channels: channel 16 appears
        assert not (await c.read_holding_registers(2600, count=20)).isError()


def _with_channels(snap: MeterSnapshot, count: int) -> MeterSnapshot:
    return replace(snap, seq=snap.seq + 100, channels=snap.channels[:count])


@pytest.mark.parametrize(
    ("frame", "reply"),
    [
        # protocol id != 0 -> 0xEB (protocol id echoed), then the connection is closed
        (
            struct.pack(">HHHBBHH", 9, 1, 6, 1, 3, 100, 2),
            struct.pack(">HHHBBB", 9, 1, 3, 1, 0x83, 0xEB),
        ),
        # declared length too large -> 0xE5, then closed
        (
            struct.pack(">HHHBBHH", 9, 0, 300, 1, 3, 100, 2),
            struct.pack(">HHHBBB", 9, 0, 3, 1, 0x83, 0xE5),
        ),
        # an HTTP request sent to the Modbus port: protocol id "/ " -> 0xEB, closed
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
        # MBAP length 1: not even a function code -> closed without an answer
        (struct.pack(">HHHB", 9, 0, 1, 1), b""),
    ],
)
async def test_malformed_frame_closes_only_that_connection(
    server: ModbusServer, client: AsyncModbusTcpClient, frame: bytes, reply: bytes | None
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request(1, 100, 2) + frame)  # a good request first: it is still answered
        tid, _, pdu = await read_frame(reader)
        assert tid == 1 and pdu[:2] == b"\x03\x04"
        rest = await asyncio.wait_for(reader.read(), timeout=2)  # until EOF: the server hung up
        if reply is not None:
            assert rest == reply
        else:
            assert rest[7:9] == b"\xd4\xeb"  # fc 'T' | 0x80, 0xEB
        # The other connection is unaffected.
        rr = await client.read_holding_registers(100, count=4, device_id=1)
        assert not rr.isError()
        assert server.status.clients == 1
        assert server.errors == 1
    finally:
        writer.close()


async def test_pipelined_requests_in_one_segment_are_all_answered_in_order(
    server: ModbusServer, current: list[MeterSnapshot]
) -> None:
    expected = expected_values(current[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request(41, 100, 2) + request(42, 102, 2) + request(43, 104, 1))
        frames = [await read_frame(reader) for _ in range(3)]
        assert [f[0] for f in frames] == [41, 42, 43]
        assert struct.unpack(">f", frames[0][2][2:])[0] == expected[100][1]
        assert struct.unpack(">f", frames[1][2][2:])[0] == expected[102][1]
        assert frames[2][2] == b"\x83\x02"
    finally:
        writer.close()


async def test_pipelined_requests_with_a_blocking_socket(server: ModbusServer) -> None:
    # Two requests in one `sendall` from a plain blocking socket, read back in order.
    def exchange() -> list[int]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
            sock.sendall(request(1001, 0, 4) + request(1002, 1000, 20))
            data = b""
            while len(data) < (9 + 8) + (9 + 40):
                chunk = sock.recv(4096)
                assert chunk
                data += chunk
        return [struct.unpack_from(">H", data, 0)[0], struct.unpack_from(">H", data, 17)[0]]

    assert await asyncio.to_thread(exchange) == [1001, 1002]


async def test_a_repeated_request_gets_its_own_transaction_id_and_the_newest_values(
    server: ModbusServer, current: list[MeterSnapshot]
) -> None:
    # A poller sends the same bytes but for the transaction id; the server answers repeats from the
    # answers it already built for the snapshot, and must still echo each id and follow new snapshots.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    async def ask(tid: int, start: int = 1000, count: int = 2, unit: int = 1) -> tuple[int, bytes]:
        writer.write(request(tid, start, count, unit))
        got_tid, _, pdu = await read_frame(reader)
        return got_tid, pdu

    try:
        first = expected_values(current[0])
        for tid in (1, 2, 65535, 0):
            got_tid, pdu = await ask(tid)
            assert got_tid == tid and struct.unpack(">f", pdu[2:])[0] == first[1000][1]
        assert await ask(5, unit=2) == (5, b"\x83\xe1")  # same range, other unit: still refused
        assert await ask(6, 1000, 21) == (6, b"\x83\x02")  # a refused request is never remembered
        assert await ask(7, 1000, 21) == (7, b"\x83\x02")
        assert struct.unpack(">f", (await ask(8, 1002))[1][2:])[0] == first[1002][1]
        current[0] = make_snapshot(2, 7.5)
        second = expected_values(current[0])
        for tid, start in ((9, 1000), (10, 1002), (11, 1002)):
            got_tid, pdu = await ask(tid, start)
            assert got_tid == tid and struct.unpack(">f", pdu[2:])[0] == second[start][1] != first[start][1]
        assert (server.requests, server.errors) == (8, 3)
    finally:
        writer.close()


async def test_partial_frames_are_buffered(server: ModbusServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        frame = request(77, 1000, 2) + request(78, 1002, 2)
        for piece in (frame[:3], frame[3:9], frame[9:15], frame[15:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
        assert [(await read_frame(reader))[0] for _ in range(2)] == [77, 78]
    finally:
        writer.close()


async def test_64_concurrent_clients(server: ModbusServer, current: list[MeterSnapshot]) -> None:
    expected = expected_values(current[0])

    async def one(i: int) -> float:
        async with pymodbus_client(server.port) as c:
            await asyncio.sleep(0.05)  # all 64 connected at once
            address = 1000 + 100 * (i % CHANNELS) + 2
            rr = await c.read_holding_registers(address, count=2, device_id=1)
            assert not rr.isError()
            value = c.convert_from_registers(rr.registers, c.DATATYPE.FLOAT32)
            assert value == expected[address][1]
            return float(value)

    results = await asyncio.gather(*(one(i) for i in range(64)))
    assert len(results) == 64
    assert server.rejected == 0


async def test_clients_beyond_max_are_accepted_then_closed(current: list[MeterSnapshot]) -> None:
    async with ModbusServer(loopback(maxClients=2), lambda: current[0]) as srv:
        conns = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(3)]
        try:
            third_reader, _ = conns[2]
            assert await asyncio.wait_for(third_reader.read(), timeout=2) == b""  # EOF
            for reader, writer in conns[:2]:
                writer.write(request(5, 100, 2))
                assert (await read_frame(reader))[0] == 5
            assert srv.rejected == 1 and srv.status.clients == 2
        finally:
            for _, writer in conns:
                writer.close()


async def test_idle_timeout_closes_a_silent_connection(current: list[MeterSnapshot]) -> None:
    loop = asyncio.get_running_loop()
    async with ModbusServer(loopback(idleTimeout=1), lambda: current[0]) as srv:
        silent_r, silent_w = await asyncio.open_connection("127.0.0.1", srv.port)
        busy_r, busy_w = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            t0 = loop.time()
            reader_eof = asyncio.ensure_future(silent_r.read())
            for tid in range(6):  # the busy client talks every 0.3 s and stays connected
                busy_w.write(request(tid, 100, 2))
                assert (await read_frame(busy_r))[0] == tid
                await asyncio.sleep(0.3)
            assert await asyncio.wait_for(reader_eof, timeout=2) == b""
            assert loop.time() - t0 >= 0.9  # closed after the timeout, not before
            busy_w.write(request(99, 100, 2))
            assert (await read_frame(busy_r))[0] == 99
        finally:
            silent_w.close()
            busy_w.close()


async def test_port_in_use_names_the_port_and_the_fix(
    server: ModbusServer, current: list[MeterSnapshot]
) -> None:
    clash = ModbusServer(loopback(port=server.port), lambda: current[0])
    with pytest.raises(PortInUse) as info:
        await clash.start()
    assert f"127.0.0.1:{server.port}" in str(info.value)
    assert "--modbus-port" in str(info.value)
    assert clash.status.state == "stopped"


async def test_status_and_restart(current: list[MeterSnapshot]) -> None:
    srv = ModbusServer(loopback(), lambda: current[0])
    assert srv.status.state == "stopped"
    async with srv:
        assert srv.status.state == "listening" and srv.status.port == srv.port != 0
        async with pymodbus_client(srv.port) as c:
            await c.read_holding_registers(0, count=8)
            await c.read_holding_registers(8, count=1)
            await asyncio.sleep(0.05)
            assert (srv.status.clients, srv.status.requests, srv.status.errors) == (1, 1, 1)
    assert srv.status.state == "stopped" and srv.status.clients == 0
    async with srv, pymodbus_client(srv.port) as c:  # reusable after stop
        assert not (await c.read_holding_registers(0, count=8)).isError()


def test_under_uvloop(current: list[MeterSnapshot]) -> None:
    """Production runs on uvloop: the same server, pipelining and a pymodbus read there."""

    async def scenario() -> tuple[list[int], float | int]:
        async with ModbusServer(loopback(), lambda: current[0]) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(request(1, 0, 4) + request(2, 100, 2))
            tids = [(await read_frame(reader))[0] for _ in range(2)]
            writer.close()
            async with pymodbus_client(srv.port) as c:
                rr = await c.read_holding_registers(102, count=2)
                value = c.convert_from_registers(rr.registers, c.DATATYPE.FLOAT32)
                assert isinstance(value, int | float)
            return tids, value

    run: Callable[..., tuple[list[int], float | int]] = uvloop.run
    tids, value = run(asyncio.wait_for(scenario(), 10))
    assert tids == [1, 2]
    assert value == expected_values(current[0])[102][1]
