"""A Modbus TCP energy meter (Eastron SDM630, SDM120, or a model file of the user's) as a remote meter.

pymodbus's async client reads the blocks its `RegisterPlan` compiled from the model (input or
holding registers), on the event loop. The connection is opened when needed and dropped after a
failure, so the next poll starts clean; pymodbus's own reconnect and retries are off (the poll
cadence is the retry). An exception response is an answer, not an outage of the link, but no values
can be trusted from it either: both end the poll with a `SourceUnavailable` saying which registers
and which exception, so the status shows what to fix in the model or the unit id.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ExceptionResponse

from homemeter.config.sources import MeterSource, modbus_address
from homemeter.errors import SourceUnavailable
from homemeter.meter.sources.meter_model import Block, MeterModel, RegisterKind, RegisterPlan
from homemeter.meter.sources.remote import Poll, Poller, RemoteChannel

#: Modbus exception codes (Modbus Application Protocol V1.1b3, 7) as a status shows them.
EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusPoller(Poller):
    def __init__(
        self, config: MeterSource, model: MeterModel, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(config, clock)
        self.host, self.port, self.unit = modbus_address(config.url)
        self.model = model
        self.plan = RegisterPlan(model)
        self._client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=config.timeout, retries=0, reconnect_delay=0
        )

    @property
    def channel_count(self) -> int:
        return len(self.model.channels)

    @property
    def requests_per_poll(self) -> int:
        return len(self.plan.blocks) + 1  # the blocks, and connecting

    async def fetch(self) -> Poll:
        client = self._client
        if not client.connected and not await client.connect():
            raise SourceUnavailable(f"cannot connect to {self.host}:{self.port}")
        answers = []
        try:
            for block in self.plan.blocks:
                answers.append(await self._read(block))
        except SourceUnavailable:
            client.close()  # a late answer must not be taken for the next request's
            raise
        try:
            channels, frequency = self.plan.decode(answers)
        except ValueError as err:
            raise SourceUnavailable(f"{self.config.url}: {err}") from err
        return Poll(
            {i: RemoteChannel(c.measurement, c.power_factor, c.counters) for i, c in enumerate(channels)},
            frequency,
        )

    async def _read(self, block: Block) -> list[int]:
        what = f"{self.model.registers.value} registers {block.address}..{block.address + block.count - 1}"
        read = (
            self._client.read_input_registers
            if self.model.registers is RegisterKind.INPUT
            else self._client.read_holding_registers
        )
        try:
            response = await read(block.address, count=block.count, device_id=self.unit)
        except ModbusException as err:
            raise SourceUnavailable(
                f"no answer from {self.host}:{self.port} unit {self.unit} reading {what} "
                f"within {self.config.timeout:g} s ({err})"
            ) from err
        if isinstance(response, ExceptionResponse) or response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTIONS.get(code, "unknown exception")
            raise SourceUnavailable(
                f"{self.host}:{self.port} unit {self.unit} answered exception {code} ({name}) reading "
                f"{what}: check the unit id and the meter model"
            )
        return list(response.registers)

    async def close(self) -> None:
        self._client.close()
