"""MQTT publishing: sample-to-subscriber latency and CPU cost, next to a bare paho publisher.

Everything runs on 127.0.0.1 against a Mosquitto started here with its own configuration file (free
port, killed at the end). Each publisher runs in its own process for `--seconds`, publishing all 17
channels once a second (`frequency` 0), while a paho subscriber in this process stamps arrivals:

- meter: the meter sampling 17 channels at the device cadence, nothing published (baseline);
- homemeter: the same meter plus the `MqttPublisher` component (discovery off: one message a tick);
- homemeter+HA: the same with Home Assistant discovery on (1 + 17 + 1 messages a tick);
- paho: a bare paho-mqtt client publishing the same 17-channel payload, prebuilt, once a second.

Latency is from the snapshot's creation in the meter (for paho: the `publish` call) to the
subscriber's arrival stamp (CLOCK_MONOTONIC is shared between processes). Publishing CPU is the
process CPU time minus the meter baseline (paho's is its whole process, minus an idle interpreter).
Usage: python bench/mqtt.py [--seconds 30]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py shadows the standard library's `http` package (paho imports urllib.request, which
# imports http.client) while this script's directory leads sys.path.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import pwd
import queue
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any

import orjson
import paho.mqtt.client as paho

from homemeter.component import Context
from homemeter.config.app import AppConfig
from homemeter.config.mqtt import MqttConfig
from homemeter.config.settings import Settings
from homemeter.integrations.mqtt.publisher import MqttPublisher
from homemeter.meter.clock import MeterClock
from homemeter.meter.payloads import meter_values
from homemeter.meter.sampler import Meter
from homemeter.meter.snapshot import MeterSnapshot
from homemeter.meter.sources.simulator import HouseholdSimulator, default_channel_configs
from homemeter.system.issues import IssueRegistry

CHANNELS = 17
TOPIC = "bench/meter"
WARM_UP_S = 2.0
MODES = ("meter", "homemeter", "homemeter+HA", "paho", "idle")


def new_meter() -> Meter:
    # Every channel on: the largest payload (about 5.6 KB).
    configs = tuple(c.model_copy(update={"active": True}) for c in default_channel_configs(CHANNELS))
    return Meter(HouseholdSimulator(seed=1, channel_count=CHANNELS), configs, {}, clock=MeterClock(1.0))


def digest(payload: bytes) -> str:
    return hashlib.sha1(payload).hexdigest()


# ----------------------------------------------------------------- workers (child processes)
async def run_meter(port: int, seconds: float, mode: str) -> dict[str, Any]:
    meter = new_meter()
    created: dict[int, tuple[MeterSnapshot, float]] = {}
    build = meter.publish

    def publish(at: float | None = None) -> MeterSnapshot:  # stamps each snapshot's creation
        snap = build(at)
        created[snap.seq] = (snap, time.monotonic())
        return snap

    meter.publish = publish  # type: ignore[method-assign]
    sampling = asyncio.create_task(meter.run())
    component = None
    if mode != "meter":
        cfg = MqttConfig(enabled=True, server="127.0.0.1", port=port, topic=TOPIC, frequency=0,
                         haDiscovery=mode == "homemeter+HA", clientid=f"bench-{os.getpid()}")  # fmt: skip
        ctx = Context(Settings(data_dir=Path(tempfile.gettempdir())), AppConfig(channels=meter.channels,
                      mqtt=cfg), meter, IssueRegistry(), "0123456789ab", None, 0)  # type: ignore[arg-type]  # fmt: skip
        component = MqttPublisher(ctx)
        await component.start()
    await asyncio.sleep(WARM_UP_S)
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, t1 = time.process_time() - cpu0, time.monotonic()
    if component is not None:
        await component.stop()
    sampling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampling
    stamps = {digest(orjson.dumps(meter_values(s))): t for s, t in created.values()}
    published = component.counters.get("published", 0) if component else 0
    return {"cpu": cpu, "window": (t0, t1), "stamps": stamps, "published": published}


def run_paho(port: int, seconds: float, payload: bytes) -> dict[str, Any]:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{os.getpid()}")
    client.connect("127.0.0.1", port, keepalive=15)
    client.loop_start()
    time.sleep(WARM_UP_S)
    sent: list[float] = []
    cpu0 = time.process_time()
    start = next_tick = t0 = time.monotonic()
    while time.monotonic() - start < seconds:
        next_tick += 1.0
        sent.append(time.monotonic())
        client.publish(TOPIC, payload, qos=0, retain=False)
        time.sleep(max(0.0, next_tick - time.monotonic()))
    cpu, t1 = time.process_time() - cpu0, time.monotonic()
    client.disconnect()
    client.loop_stop()
    return {"cpu": cpu, "window": (t0, t1 + 0.5), "sent": sent, "published": len(sent)}


def run_idle(seconds: float) -> dict[str, Any]:
    """An interpreter with the same imports doing nothing: what the paho figure is measured against."""
    time.sleep(WARM_UP_S)
    cpu0 = time.process_time()
    time.sleep(seconds)
    return {"cpu": time.process_time() - cpu0, "published": 0}


def worker(mode: str, port: int, seconds: float, payload_file: str) -> None:
    if mode == "paho":
        result = run_paho(port, seconds, Path(payload_file).read_bytes())
    elif mode == "idle":
        result = run_idle(seconds)
    else:
        result = asyncio.run(run_meter(port, seconds, mode))
    print(json.dumps(result))


# ----------------------------------------------------------------- the run (this process)
def start_broker(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    conf = directory / "mosquitto.conf"
    user = pwd.getpwuid(os.geteuid()).pw_name
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser {user}\n")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start (scripts/system-deps.sh mosquitto)")


class Arrivals:
    def __init__(self, port: int) -> None:
        self.q: queue.Queue[tuple[bytes, float]] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
        self.client.on_message = lambda c, u, m: self.q.put((bytes(m.payload), time.monotonic()))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(TOPIC)
        self.client.loop_start()

    def take(self) -> list[tuple[bytes, float]]:
        out = []
        while not self.q.empty():
            out.append(self.q.get_nowait())
        return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per publisher")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.port, args.seconds, args.payload)
        return

    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        directory = Path(tmp)
        broker, port = start_broker(directory)
        try:
            payload_file = directory / "payload.json"
            meter = new_meter()
            meter.simulate(5.0)
            payload_file.write_bytes(orjson.dumps(meter_values(meter.latest)))
            arrivals = Arrivals(port)
            results: dict[str, dict[str, Any]] = {}
            for mode in MODES:
                arrivals.take()
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", mode, "--port", str(port),
                     "--seconds", str(args.seconds), "--payload", str(payload_file)],
                    check=True, capture_output=True, text=True, timeout=args.seconds + 60,
                )  # fmt: skip
                time.sleep(0.3)  # the last message in flight
                result = json.loads(out.stdout)
                t0, t1 = result.get("window", (0.0, 0.0))
                result["arrivals"] = [(p, at) for p, at in arrivals.take() if t0 <= at <= t1]
                results[mode] = result
            arrivals.client.loop_stop()
        finally:
            broker.kill()
            broker.wait(10)
    report(results, payload_file_size=len(orjson.dumps(meter_values(meter.latest))), seconds=args.seconds)


def latencies(result: dict[str, Any]) -> list[float]:
    if "stamps" in result:
        stamps = result["stamps"]
        return [(at - stamps[digest(p)]) * 1000 for p, at in result["arrivals"] if digest(p) in stamps]
    sent, got = result["sent"], [at for _, at in result["arrivals"]]
    return [(b - a) * 1000 for a, b in zip(sent[-len(got) :], got, strict=False)]


def report(results: dict[str, dict[str, Any]], payload_file_size: int, seconds: float) -> None:
    base = results["meter"]["cpu"]
    idle = results["idle"]["cpu"]
    print(
        f"\n## MQTT publishing, {CHANNELS} channels ({payload_file_size} B payload), {seconds:.0f} s each\n"
    )
    print("| publisher | messages | latency p50 ms | p99 ms | publishing CPU ms/s | CPU per message µs |")
    print("|---|---|---|---|---|---|")
    rows = {}
    for mode in ("homemeter", "homemeter+HA", "paho"):
        r = results[mode]
        lat = latencies(r)
        cpu = r["cpu"] - (idle if mode == "paho" else base)
        n = max(len(r["arrivals"]), 1)
        rows[mode] = (statistics.median(lat), percentile(lat, 99), cpu)
        print(f"| {mode} | {len(r['arrivals'])} | {rows[mode][0]:.2f} | {rows[mode][1]:.2f} | "
              f"{cpu / seconds * 1000:.2f} | {cpu / n * 1e6:.0f} |")  # fmt: skip
    print(f"\nmeter alone: {base / seconds * 1000:.1f} ms CPU per s; idle interpreter: "
          f"{idle / seconds * 1000:.2f} ms per s")  # fmt: skip
    hm, pa = rows["homemeter"], rows["paho"]
    print(f"ratios homemeter/paho: latency p50 {hm[0] / pa[0]:.1f}x, p99 {hm[1] / pa[1]:.1f}x, "
          f"CPU {hm[2] / max(pa[2], 1e-9):.1f}x")  # fmt: skip
    print("(latency samples: one per second, so p99 of a short run is close to its maximum)")


if __name__ == "__main__":
    main()
