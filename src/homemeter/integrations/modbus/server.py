"""Read-only Modbus TCP server: MBAP framing, FC03 answered with slices of the register image.

Why not pymodbus's server: measured on this 2-core machine (shared/bench/results/modbus-20261125),
pymodbus 3.16's server reaches 0.55x a libmodbus C server with 1 connection and 0.22x with 16, and
answers only the first of two pipelined requests. A lean `asyncio.Protocol` on uvloop reaches ~1.0x,
and so does this one: in bench/modbus/run.py (2026-11-29, quiet machine, sampling running, peers
measured in turns slice by slice) it serves 0.94x the C server's req/s for 1 connection x 2
registers, 0.94x for 1 x 20, 0.95-1.10x for 16 x 2; pymodbus 0.24x / 0.23x / 0.17x
(bench/modbus/README.md). A request costs 3 syscalls (epoll, read, write; libmodbus makes 6) and perf
puts 66-76 % of the server's CPU in the kernel: little is left to win in Python. pymodbus stays the
test client.

Behaviour follows the device (reference integrations.md 1.1-1.4): unit id 1 only (else 0xE1), FC03
only (else 0x01), quantity 1..125 (else 0x03), every address of the range valid (else 0x02),
transaction and protocol ids echoed, pipelined requests answered in order. Framing errors (protocol
id != 0 -> 0xEB, MBAP length > 256 -> 0xE5) are answered like the device and then the connection is
closed: the byte stream can no longer be split into frames reliably.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, cast

from homemeter.config.modbus import ModbusConfig
from homemeter.errors import PortInUse
from homemeter.integrations.modbus.image import RegisterImage, RegisterLayout
from homemeter.integrations.modbus.register_map import register_map
from homemeter.meter.snapshot import MeterSnapshot

log = logging.getLogger(__name__)

UNIT_ID = 1  # the only unit served (reference 1.2)
FC_READ_HOLDING = 0x03  # read holding registers
MAX_QUANTITY = 125  # FC03 spec limit: 125 registers = 250 data bytes
MAX_MBAP_LENGTH = 256  # MBAP length field; the whole ADU (length + 6) is at most 262 bytes
REQUEST_SIZE = 12  # MBAP (7 bytes with the unit id) + function code, start address, quantity
MAX_KNOWN_REPLIES = 64  # distinct requests remembered per snapshot; pollers repeat a handful

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
INVALID_SERVER = 0xE1  # eModbus-internal code the device sends for unit id != 1
PACKET_LENGTH_ERROR = 0xE5  # eModbus: declared length too large
TCP_HEAD_MISMATCH = 0xEB  # eModbus: protocol id != 0

_MBAP = struct.Struct(">HHH")  # transaction id, protocol id, length (unit + PDU bytes)
_PDU03 = struct.Struct(">BBHH")  # unit, function code, start address, quantity
_RANGE = struct.Struct(">HH")  # start address, quantity
_REPLY03 = struct.Struct(">HHHBBB")  # MBAP + unit + function code + byte count
_EXCEPTION = struct.Struct(">HHHBBB")  # MBAP (length 3) + unit + (fc | 0x80) + exception code


@dataclass(frozen=True, slots=True)
class ModbusStatus:
    """What the API and the statistics page show about the server."""

    state: Literal["listening", "stopped"]
    bind: str
    port: int
    clients: int
    requests: int  # answered with data
    errors: int  # answered with an exception, or dropped as malformed
    rejected: int  # connections closed at once because maxClients were connected


class ModbusServer:
    """Serves the register map of `latest()` over Modbus TCP; an async context manager.

    `latest` is called once per received segment; a new snapshot is encoded the first time a request
    sees it and that image is reused, so a reply never mixes two snapshots. Reusable after `stop()`,
    not reentrant. Port 0 (e.g. `config.model_copy(update={"port": 0})` in tests) picks a free port;
    `port` then tells which.
    """

    def __init__(self, config: ModbusConfig, latest: Callable[[], MeterSnapshot]) -> None:
        self.config = config
        self.requests = 0
        self.errors = 0
        self.rejected = 0
        self._latest = latest
        self._server: asyncio.Server | None = None
        self._port = config.port
        self._clients: set[_Connection] = set()
        self._snapshot: MeterSnapshot | None = None
        self._image: RegisterImage | None = None
        self._layout: RegisterLayout | None = None
        self._channel_count = -1
        # Answers of the current snapshot by request bytes after the transaction id (see
        # `_Connection.data_received`); emptied whenever a new snapshot is encoded.
        self._replies: dict[bytes, bytes] = {}

    @property
    def port(self) -> int:
        """The bound port once started (differs from the configured one only for port 0)."""
        return self._port

    @property
    def status(self) -> ModbusStatus:
        return ModbusStatus(
            state="listening" if self._server is not None else "stopped",
            bind=self.config.bind,
            port=self._port,
            clients=len(self._clients),
            requests=self.requests,
            errors=self.errors,
            rejected=self.rejected,
        )

    async def start(self) -> None:
        """Listen; `PortInUse` (naming the address and the fix) if the port cannot be bound."""
        if self._server is not None:
            raise RuntimeError("ModbusServer is already started")
        loop = asyncio.get_running_loop()
        bind, port = self.config.bind, self.config.port
        try:
            self._server = await loop.create_server(
                lambda: _Connection(self), bind, port, reuse_address=True, backlog=128
            )
        except OSError as err:
            reason = err.strerror or str(err)
            if err.errno == errno.EACCES and port < 1024:
                hint = "run as root, grant CAP_NET_BIND_SERVICE or use --modbus-port"
            else:
                hint = "use --modbus-port or free the port"
            raise PortInUse(f"cannot listen for Modbus TCP on {bind}:{port} ({reason}); {hint}") from err
        self._port = self._server.sockets[0].getsockname()[1]
        log.debug("modbus server started address=%s:%d", bind, self._port)

    async def stop(self) -> None:
        """Stop listening and close every client connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._clients):
            conn.close()
        # connection_lost runs on a later loop iteration: the status must say 0 clients now.
        self._clients.clear()
        await server.wait_closed()
        log.debug("modbus server stopped requests=%d errors=%d", self.requests, self.errors)

    async def __aenter__(self) -> ModbusServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def image(self) -> RegisterImage:
        """The image of the current snapshot, encoded at most once per snapshot."""
        snapshot = self._latest()
        image = self._image
        # Identity, not just `seq`: a restarted meter (or a test) may reuse a sequence number.
        if snapshot is self._snapshot and image is not None:
            return image
        count = len(snapshot.channels)
        if self._layout is None or count != self._channel_count:
            self._layout = RegisterLayout(register_map(count))
            self._channel_count = count
        image = RegisterImage.build(snapshot, self._layout)
        self._snapshot, self._image = snapshot, image
        self._replies = {}
        return image


class _Connection(asyncio.Protocol):
    """One client: buffers partial frames, answers every complete frame of a segment in order."""

    def __init__(self, server: ModbusServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        self._loop = asyncio.get_running_loop()
        self._idle = server.config.idleTimeout
        self._last_rx = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but has the same methods.
        transport = cast(asyncio.Transport, transport)
        server = self._server
        if len(server._clients) >= server.config.maxClients:
            # Like the device: accept, then close at once (the client sees a clean EOF).
            server.rejected += 1
            log.debug("modbus client rejected: %d clients connected", len(server._clients))
            transport.close()
            return
        self._transport = transport
        server._clients.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Small request/response exchanges: never wait for Nagle's timer.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._last_rx = self._loop.time()
        self._idle_timer = self._loop.call_at(self._last_rx + self._idle, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._clients.discard(self)
        self._transport = None
        self._buf = b""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def pause_writing(self) -> None:
        # A client that sends but does not read: stop reading so replies cannot pile up in memory.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def _check_idle(self) -> None:
        # One timer per connection, re-armed only when it fires: no timer work per request.
        if self._transport is None:
            return
        due = self._last_rx + self._idle
        if self._loop.time() >= due:
            log.debug("modbus client idle for %.0f s, closing", self._idle)
            self._idle_timer = None
            self._transport.close()
        else:
            self._idle_timer = self._loop.call_at(due, self._check_idle)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        self._last_rx = self._loop.time()
        server = self._server
        if not self._buf and len(data) == REQUEST_SIZE and server._latest() is server._snapshot:
            # A poller repeats the same few requests: when this exact one (but for its transaction
            # id) was answered from the current snapshot, send that answer again. This skips the
            # parsing below: 0.6 instead of 1.5 us of Python per request (bench/modbus/README.md).
            tail = server._replies.get(data[2:])
            if tail is not None:
                server.requests += 1
                transport.write(data[:2] + tail)
                return
        self._answer(transport, self._buf + data if self._buf else data)

    def _answer(self, transport: asyncio.Transport, buf: bytes) -> None:
        """Answer every complete frame in `buf` in order, in one write; keep a trailing partial frame."""
        server = self._server
        n = len(buf)
        pos = 0
        out: list[bytes] = []
        ok = refused = 0
        image: RegisterImage | None = None
        while n - pos >= 6:
            tid, proto, length = _MBAP.unpack_from(buf, pos)
            if proto != 0 or not 2 <= length <= MAX_MBAP_LENGTH:
                self._count(ok, refused + 1)
                self._drop(buf, pos, out)
                return
            end = pos + 6 + length
            if end > n:
                break  # partial frame: keep it for the next segment
            if length == 6:
                unit, fc, start, count = _PDU03.unpack_from(buf, pos + 6)
                if unit == UNIT_ID and fc == FC_READ_HOLDING and 1 <= count <= MAX_QUANTITY:
                    if image is None:
                        image = self._server.image()  # one snapshot for the whole segment
                    layout = image.layout
                    if start < layout.size and layout.first_invalid[start] >= start + count:
                        nbytes = 2 * count
                        out.append(_REPLY03.pack(tid, 0, nbytes + 3, UNIT_ID, fc, nbytes))
                        out.append(image.data[2 * start : 2 * start + nbytes])
                        ok += 1
                        pos = end
                        continue
            reply, served = self._slow_path(buf, pos, tid, length)
            out.append(reply)
            if served:
                ok += 1
            else:
                refused += 1
            pos = end
        self._buf = buf[pos:] if pos < n else b""
        if out:
            # Counted inline: this runs for every segment (up to ~90k/s).
            server.requests += ok
            server.errors += refused
            # Replies of one segment go out in one write (one send syscall), in request order.
            reply = out[0] + out[1] if len(out) == 2 else b"".join(out)
            if n == REQUEST_SIZE and ok == 1 and len(server._replies) < MAX_KNOWN_REPLIES:
                # One valid request, answered from the image of `server._snapshot`.
                server._replies[buf[2:]] = reply[2:]
            transport.write(reply)

    def _count(self, ok: int, refused: int) -> None:
        server = self._server
        server.requests += ok
        server.errors += refused

    def _slow_path(self, buf: bytes, pos: int, tid: int, length: int) -> tuple[bytes, bool]:
        """Any well-framed request the fast path did not answer: (reply, served with data).

        Checks in the device's order (reference 1.3): unit, function code, quantity, addresses.
        """
        unit, fc = buf[pos + 6], buf[pos + 7]
        if unit != UNIT_ID:
            code = INVALID_SERVER
        elif fc != FC_READ_HOLDING:
            code = ILLEGAL_FUNCTION
        elif length < 6:
            code = ILLEGAL_DATA_VALUE  # truncated PDU: missing fields read as 0, i.e. quantity 0
        else:
            start, count = _RANGE.unpack_from(buf, pos + 8)
            image = self._server.image()
            if not 1 <= count <= MAX_QUANTITY:
                code = ILLEGAL_DATA_VALUE
            elif not image.is_valid(start, count):
                code = ILLEGAL_DATA_ADDRESS
            else:  # a valid read with trailing bytes after the quantity: they are ignored
                nbytes = 2 * count
                head = _REPLY03.pack(tid, 0, nbytes + 3, UNIT_ID, fc, nbytes)
                return head + image.read(start, count), True
        return _EXCEPTION.pack(tid, 0, 3, unit, (fc | 0x80) & 0xFF, code), False

    def _drop(self, buf: bytes, pos: int, out: list[bytes]) -> None:
        """A frame that breaks MBAP framing: answer what the device answers, then hang up."""
        assert self._transport is not None
        tid, proto, length = _MBAP.unpack_from(buf, pos)
        unit = buf[pos + 6] if len(buf) > pos + 6 else 0
        fc = (buf[pos + 7] if len(buf) > pos + 7 else 0) | 0x80
        if proto != 0:
            out.append(_EXCEPTION.pack(tid, proto, 3, unit, fc, TCP_HEAD_MISMATCH))
        elif length > MAX_MBAP_LENGTH:
            out.append(_EXCEPTION.pack(tid, 0, 3, unit, fc, PACKET_LENGTH_ERROR))
        # MBAP length 0 or 1 (no function code): nothing sensible to answer.
        log.debug("modbus malformed frame (protocol %d, length %d), closing", proto, length)
        self._buf = b""
        if out:
            self._transport.write(b"".join(out))
        self._transport.close()
