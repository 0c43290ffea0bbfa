"""Waveform capture (reference meter.md 7): one capture at a time, armed by the API, run by the source.

The device's states: idle -> armed (`arm`) -> capturing -> complete (or error) -> idle once the data
was read (`take`). The source does the sampling where it can (the ADE7953 driver on its sampling
thread, when the armed channel is measured); the API only arms, asks and takes, which never waits.
An armed capture whose channel is not measured within `ARM_TIMEOUT_S` ends in `error`, so a client
is never stuck behind a capture that cannot happen (the device stays armed for ever).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from homemeter.config.roles import Phase
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot

NO_CHANNEL = 255  # the device's "none" in waveform/status
CYCLES = 4  # full line cycles per capture, from a positive-going voltage zero crossing
SAMPLE_RATE_HZ = 6_990.0  # the device's rate (~671 samples for 4 cycles at 45 Hz)
MAX_SAMPLES = 700
ARM_TIMEOUT_S = 30.0  # longer than the meter's 15 s starvation bound for any active channel
#: Phase of each line relative to L1 in degrees (IEC rotation, as the meter's angle path).
LINE_DEGREES = {Phase.L1: 0.0, Phase.L2: -120.0, Phase.L3: 120.0, Phase.SPLIT: 0.0}


class CaptureBusy(Exception):
    """Arming refused: a capture is in progress or its data was not read yet (the device's 409)."""


@dataclass(frozen=True, slots=True)
class Waveform:
    """One capture: volts and amps (sign as the channel's `reverse` says) at microsecond offsets."""

    channel: int
    start_unix_ms: int
    start_micros: int  # monotonic clock of the capture's first sample, microseconds
    voltage_phase: int  # line of the voltage input (channel 0's phase)
    current_phase: int  # line of the channel's CT
    volts: tuple[float, ...]
    amps: tuple[float, ...]
    micros: tuple[int, ...]  # offset of each sample from the first

    @property
    def phase_shift_degrees(self) -> float:
        """How far the channel's line is from the measured voltage's: 0, +-120."""
        shift = LINE_DEGREES[Phase(self.current_phase)] - LINE_DEGREES[Phase(self.voltage_phase)]
        return 180.0 - (180.0 - shift) % 360.0

    def body(self) -> dict[str, Any]:
        """The device's `waveform/data` object."""
        return {
            "channelIndex": self.channel,
            "sampleCount": len(self.volts),
            "captureStartUnixMillis": self.start_unix_ms,
            "captureStartMicros": self.start_micros,
            "voltagePhase": self.voltage_phase,
            "currentPhase": self.current_phase,
            "phaseShiftDegrees": self.phase_shift_degrees,
            "voltage": [round(v, 2) for v in self.volts],
            "current": [round(i, 4) for i in self.amps],
            "microsDelta": list(self.micros),
        }


class WaveformCapture:
    """The capture state machine; thread-safe, and no method waits on anything but its own lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "idle"
        self._channel = NO_CHANNEL
        self._armed_at = 0.0
        self._result: Waveform | None = None
        self.error: str | None = None
        #: Armed channel, read without the lock on the sampling hot path (None: nothing armed).
        self.wanted: int | None = None

    def arm(self, channel: int) -> None:
        with self._lock:
            self._expire()
            if self._state in ("armed", "capturing"):
                raise CaptureBusy("Waveform capture already in progress")
            if self._state == "complete":
                raise CaptureBusy(
                    "Previous waveform capture complete. Please retrieve data before arming a new capture"
                )
            self._state, self._channel, self._result, self.error = "armed", channel, None, None
            self._armed_at = time.monotonic()
            self.wanted = channel

    def status(self) -> tuple[str, int]:
        """(state, channel) as `waveform/status` shows them."""
        with self._lock:
            self._expire()
            return self._state, self._channel

    def take(self) -> Waveform | None:
        """The finished capture, once: reading it returns the state to idle (as the device)."""
        with self._lock:
            result = self._result
            if self._state != "complete" or result is None:
                return None
            self._state, self._channel, self._result = "idle", NO_CHANNEL, None
            return result

    def run(self, channel: int, sample: Callable[[], Waveform]) -> None:
        """Capture `channel` now if it is the armed one (called by the source after reading it)."""
        with self._lock:
            if self.wanted != channel or self._state != "armed":
                return
            self._state, self.wanted = "capturing", None
        try:
            result = sample()
        except Exception as err:  # any failure ends this capture, never the meter
            with self._lock:
                self._state, self.error = "error", str(err)
            return
        with self._lock:
            self._state, self._result = "complete", result

    def _expire(self) -> None:
        if self._state == "armed" and time.monotonic() - self._armed_at > ARM_TIMEOUT_S:
            self._state, self.wanted = "error", None
            self.error = f"channel {self._channel} was not measured within {ARM_TIMEOUT_S:.0f} s"


@runtime_checkable
class WaveformSource(Protocol):
    """A source that can capture waveforms (the ADE7953 sources; the simulator, synthetically)."""

    @property
    def waveform(self) -> WaveformCapture: ...

    def arm_waveform(self, channel: int) -> None:
        """Arm a capture of `channel` (CaptureBusy while one is pending); never waits."""


def sine_capture(reading: ChannelReading, reference: Phase, frequency: float, at: float) -> Waveform:
    """Pure sines of the reading's RMS values, the current at the angle of its P and Q (so its
    reverse flag and role rules show), 4 cycles from a positive-going voltage zero crossing, at
    the device's sample rate. `reference`: the line of the voltage input (channel 0's)."""
    count = min(MAX_SAMPLES, int(CYCLES / frequency * SAMPLE_RATE_HZ) + 1)
    omega = 2.0 * math.pi * frequency
    lag = math.atan2(reading.reactive_power, reading.active_power)
    v_peak, i_peak = reading.voltage * math.sqrt(2.0), reading.current * math.sqrt(2.0)
    times = [k / SAMPLE_RATE_HZ for k in range(count)]
    return Waveform(
        channel=reading.index,
        start_unix_ms=int(at * 1000),
        start_micros=int(time.monotonic() * 1e6),
        voltage_phase=int(reference),
        current_phase=int(reading.phase),
        volts=tuple(v_peak * math.sin(omega * t) for t in times),
        amps=tuple(i_peak * math.sin(omega * t - lag) for t in times),
        micros=tuple(round(t * 1e6) for t in times),
    )


class SyntheticWaveforms:
    """The simulator's capture: sines built from the channel's latest reading, at once on arming.

    The household simulator has no sampled waveform, only values per window; a user opening the
    waveform page still expects a plot of what the channel carries, so the reading's V, I and
    power angle become pure sines (said in the OpenAPI description; the chip sources sample).
    """

    def __init__(self, latest: Callable[[], MeterSnapshot]) -> None:
        self._capture = WaveformCapture()
        self._latest = latest

    @property
    def waveform(self) -> WaveformCapture:
        return self._capture

    def arm_waveform(self, channel: int) -> None:
        self._capture.arm(channel)
        snap = self._latest()
        reading, reference = snap.channels[channel], snap.channels[0].phase
        frequency, at = snap.grid_frequency, snap.taken_at
        self._capture.run(channel, lambda: sine_capture(reading, reference, frequency, at))
