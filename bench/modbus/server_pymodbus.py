"""The pymodbus peer of bench/modbus/run.py: pymodbus's own async Modbus TCP server.

Serves what server_libmodbus.c serves: holding registers 1000..1099 on 127.0.0.1, register pair k
holding the float32 k + 0.25 (big-endian, high word first), unit 1, other addresses exception 02.
`ModbusTcpServer(...).serve_forever()` is what pymodbus's `StartAsyncTcpServer` runs; the datastore is
a `SimDevice` (the pymodbus >= 3.12 way). It runs on uvloop like homemeter by default, so the two
Python peers differ only in their server code; `--loop asyncio` gives pymodbus's usual loop.
Usage: server_pymodbus.py PORT [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import pymodbus
import uvloop
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

FIRST = 1000
NREGS = 100
UNIT = 1


async def serve(port: int) -> None:
    values = [k + 0.25 for k in range(NREGS // 2)]
    device = SimDevice(id=UNIT, simdata=[SimData(FIRST, values=values, datatype=DataType.FLOAT32)])
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(server.serve_forever(), name="pymodbus-server")
    # serve_forever() binds first; `listening` tells run.py the port is open.
    while not server.is_active() and not task.done():
        await asyncio.sleep(0.01)
    print(
        f"server_pymodbus {pymodbus.__version__} listening on 127.0.0.1:{port} ({type(loop).__module__})",
        flush=True,
    )
    await stop.wait()
    await server.shutdown()
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        uvloop.run(serve(args.port))
    else:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
