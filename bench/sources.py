"""CPU cost of polling a remote meter, next to a bare client doing the same requests (issue 18).

A `homemeter run` on the simulator (17 channels, a subprocess) plays both remote meters: its REST API
is the EnergyMe device, its Modbus server (FC03, homemeter's register map) the Modbus meter, read
with a model file written here (channels 0..2 of homemeter's map as holding registers). In this
process, one after the other:

- energyme: `EnergyMePoller.poll_once()` (meter-values with Digest, parsed and validated, counters
  followed) next to the peer, a bare `httpx.AsyncClient.get` of the same URL with the same Digest and
  `response.json()`;
- modbus: `ModbusPoller.poll_once()` (the blocks read, decoded, counters followed) next to the peer,
  bare `read_holding_registers` of the same blocks with pymodbus's async client.

Reported: this process's CPU time per poll (time.process_time; the server's is not counted) and the
ratio to the peer, median over repetitions. At the default 1 s cadence, µs per poll / 1e4 is the
share of a core in percent.
Usage: python bench/sources.py [--polls 200] [--reps 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# bench/http.py shadows the standard library's `http` package while this directory leads sys.path.
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    del sys.path[0]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402

import httpx  # noqa: E402
import requests  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from homemeter.config.sources import MeterSource, SourceKind  # noqa: E402
from homemeter.integrations.modbus.register_map import register_map  # noqa: E402
from homemeter.meter.sources.energyme import EnergyMePoller  # noqa: E402
from homemeter.meter.sources.meter_model import load_model  # noqa: E402
from homemeter.meter.sources.modbus_meter import ModbusPoller  # noqa: E402

PASSWORD = "bench-password-1"
KEYS = {"current": "current", "active_power": "activePower", "reactive_power": "reactivePower",
        "apparent_power": "apparentPower", "power_factor": "powerFactor",
        "active_energy_imported": "activeEnergyImported",
        "active_energy_exported": "activeEnergyExported"}  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_of_homemeter(path: Path) -> None:
    """Channels 0..2 of homemeter's own Modbus map, as a meter model (holding registers; at most 20
    per request, as its channel blocks are apart)."""
    address = {r.name: r.address for r in register_map(17)}
    channels = []
    for ch in range(3):
        values = {key: {"address": address[f"channel_{ch}_{attr}"]} for attr, key in KEYS.items()}
        values["voltage"] = {"address": address["voltage"]}
        channels.append({"label": f"Channel {ch}", "values": values})
    doc = {"model": "homemeter", "registers": "holding", "maxRegisters": 20, "channels": channels,
           "frequency": {"address": address["grid_frequency"]}}  # fmt: skip
    path.write_text(json.dumps(doc))


async def cpu_per_call(call: Callable[[], Awaitable[object]], n: int) -> float:
    for _ in range(5):  # connections, Digest challenge
        await call()
    start = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - start) / n * 1e6


async def run(http_port: int, modbus_port: int, model_file: Path, polls: int, reps: int) -> None:
    url = f"http://127.0.0.1:{http_port}"
    device = MeterSource(name="d", kind=SourceKind.ENERGYME, url=url, password=SecretStr(PASSWORD))
    grid = MeterSource(name="m", kind=SourceKind.MODBUS, url=f"modbus://127.0.0.1:{modbus_port}/1",
                       modelFile=str(model_file))  # fmt: skip
    ours = EnergyMePoller(device)
    bare = httpx.AsyncClient(auth=httpx.DigestAuth("admin", PASSWORD))
    model = load_model(path=model_file)
    modbus = ModbusPoller(grid, model)
    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_port, retries=0, reconnect_delay=0)
    await client.connect()

    async def bare_get() -> object:
        return (await bare.get(f"{url}/api/v1/ade7953/meter-values")).json()

    async def bare_read() -> object:
        return [await client.read_holding_registers(b.address, count=b.count) for b in modbus.plan.blocks]

    results: dict[str, list[tuple[float, float]]] = {"energyme": [], "modbus": []}
    for _ in range(reps):
        results["energyme"].append(
            (await cpu_per_call(ours.poll_once, polls), await cpu_per_call(bare_get, polls))
        )
        results["modbus"].append(
            (await cpu_per_call(modbus.poll_once, polls), await cpu_per_call(bare_read, polls))
        )
    assert ours.health().ok and modbus.health().ok, (ours.health(), modbus.health())
    print(f"python {platform.python_version()}, {polls} polls x {reps} repetitions, CPU of this process")
    print(f"{'source':<10}{'ours µs/poll':>14}{'peer µs/poll':>14}{'ours/peer':>11}")
    for name, rows in results.items():
        ours_us = statistics.median(r[0] for r in rows)
        peer_us = statistics.median(r[1] for r in rows)
        ratio = statistics.median(r[0] / r[1] for r in rows)
        print(f"{name:<10}{ours_us:>14.0f}{peer_us:>14.0f}{ratio:>11.2f}")
    await ours.close()
    await modbus.close()
    await bare.aclose()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    http_port, modbus_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "homemeter-model.json"
        model_of_homemeter(model_file)
        argv = [sys.executable, "-m", "homemeter.cli", "--data-dir", f"{tmp}/data", "--log-level",
                "WARNING", "run", "--bind", "127.0.0.1", "--http-port", str(http_port),
                "--modbus-port", str(modbus_port), "--no-mdns"]  # fmt: skip
        env = {**os.environ, "HOMEMETER_ADMIN_PASSWORD": PASSWORD}
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{http_port}/api/v1/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("homemeter did not start")
                time.sleep(0.1)
            time.sleep(1.0)  # the first readings (meter-values is [] before them)
            asyncio.run(run(http_port, modbus_port, model_file, args.polls, args.reps))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
