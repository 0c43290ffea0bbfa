"""A stand-in Modbus TCP energy meter: pymodbus's server with registers laid out from a model file.

The register memory is the published map (the model file homemeter reads, e.g. the SDM630's):
every quantity of every channel is encoded at its address with its type and scale, so a test sets
values in the meter's own units (V, A, W, kWh) and checks what homemeter decodes. The server runs in
its own thread and event loop (the service under test has its own). `mode` makes it misbehave:
`silent` never answers (a timeout), `exception` answers every read with exception 04.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from homemeter.meter.sources.meter_model import MeterModel, Register
from tests.loopback import free_port, wait_until

SIZE = 0x200  # registers served: 0..511 (the SDM630 map ends at 0x0178)
_FORMAT = {"float32": "f", "int32": "i", "uint32": "I", "int16": "h", "uint16": "H"}


def encode(reg: Register, value: float, word_order: str = "big") -> list[int]:
    """The meter's words for `value` (in homemeter's unit: the register holds value / scale)."""
    raw = value / reg.scale
    packed = struct.pack(">" + _FORMAT[reg.type], raw if reg.type == "float32" else round(raw))
    words = list(struct.unpack(f">{len(packed) // 2}H", packed))
    return words[::-1] if word_order == "little" and len(words) == 2 else words


class MeterStandIn:
    def __init__(self, model: MeterModel, unit: int = 1) -> None:
        self.model = model
        self.unit = unit
        self.port = free_port()
        self.words: dict[int, int] = {}
        self.mode = "ok"  # "silent": never answers; "exception": exception 04 to every read
        self.reads = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None

    @property
    def url(self) -> str:
        return f"modbus://127.0.0.1:{self.port}/{self.unit}"

    def set(self, channel: int, **values: float) -> None:
        """Channel values by meter-values key, in homemeter's units (energies in Wh)."""
        for key, value in values.items():
            reg = self.model.channels[channel].values[key]
            self._put(reg, value)

    def set_frequency(self, hz: float) -> None:
        assert self.model.frequency is not None
        self._put(self.model.frequency, hz)

    def _put(self, reg: Register, value: float) -> None:
        for i, word in enumerate(encode(reg, value, self.model.wordOrder)):
            self.words[reg.address + i] = word

    async def _action(self, *call: Any) -> ExcCodes | None:
        """pymodbus's SimAction: (function code, block start, address, count, memory, written)."""
        _, start, address, count, registers, _ = call
        if self.mode == "silent":
            await asyncio.sleep(3600)
        if self.mode == "exception":
            return ExcCodes.DEVICE_FAILURE
        self.reads += 1
        for a in range(address, address + count):
            registers[a - start] = self.words.get(a, 0)
        return None

    async def _serve(self, started: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        device = SimDevice(
            self.unit,
            simdata=[SimData(0, count=SIZE, values=0, datatype=DataType.REGISTERS)],
            action=self._action,
        )
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        started.set()
        await self._server.serve_forever()

    def _run(self, started: threading.Event) -> None:
        asyncio.run(self._serve(started))

    @contextmanager
    def running(self) -> Iterator[MeterStandIn]:
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        thread.start()
        started.wait(5)
        wait_until(self._listening, 5, what="the stand-in meter listening")
        try:
            yield self
        finally:
            assert self._loop is not None and self._server is not None
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)
            thread.join(5)

    def _listening(self) -> bool:
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0
