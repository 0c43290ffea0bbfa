"""The ADE7953 as a `SampleSource`: line-cycle windows, the multiplexer, conversion, recovery.

Cadence (reference meter.md 4.1): the chip latches the energies of both current channels every
LINECYC half cycles and raises CYCEND. `advance` waits (bounded) for that, `measure` reads the
latched window. Channel 0 is current channel A; every other channel reaches channel B through the
74HC4067, which `select` switches right after a window ended. The window that spans a switch, and
the first window after an initialisation (partial), are never read: a mux read needs the second
CYCEND after its switch, which the meter's cadence (a mux read every second window) provides.

Failures never hang and never invent data: every wait is bounded (a window + 1 s), a read that
fails verification or the RMS witness raises a `SourceUnavailable` subclass, which the meter counts
as a failed read while it keeps the last-read time, so the next good reading covers the gap (energy
neither lost nor counted twice). A stuck bus or a chip that reset itself is re-initialised, at once
after a reset and with a capped backoff while it does not answer.

Threads: the meter calls `advance`/`select`/`measure` from its sampling thread, the API may read raw
registers from another; one lock serialises every SPI sequence. `configure` and `health` only swap
or read references and never wait on the bus.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Phase
from homemeter.errors import ConfigError, ConfigRejected
from homemeter.meter.source import Measurement, SourceHealth
from homemeter.meter.sources.ade7953 import registers as r
from homemeter.meter.sources.ade7953.bus import Ade7953Error, BusError, Glitch
from homemeter.meter.sources.ade7953.chip import Chip
from homemeter.meter.sources.ade7953.conversion import (
    INSTANT_PER_RMS_LSB,
    BoardProfile,
    ChannelScale,
    angle_degrees,
    calibration_writes,
    frequency_of,
    line_cycles,
)
from homemeter.meter.sources.ade7953.registers import Register
from homemeter.meter.waveform import CYCLES, MAX_SAMPLES, SAMPLE_RATE_HZ, Waveform, WaveformCapture

log = logging.getLogger(__name__)

CYCLE_GRACE_S = 1.0  # no CYCEND within a window + this: a failure (the device's 1 s + sample time)
POLL_S = 0.005  # without an IRQ line: status polls this far apart once a window is due
BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # between initialisation attempts while it fails
REINIT_AFTER = 5  # consecutive failed windows (timeouts, glitches) before the chip is set up again
FREQUENCY_RANGE = (45.0, 65.0)
WITNESS_TOLERANCE = 0.5  # |S - S_rms| / S_rms above this: the reading is discarded (reference 2.6)
WITNESS_FLOOR = 0.001  # x rated current x V: below it the witness is not applied
ANGLE_NOLOAD = 0.0005  # x rated current: below it an angle-path reading is zero (reference 2.3)
_THETA = {Phase.L1: 0.0, Phase.L2: -120.0, Phase.L3: 120.0, Phase.SPLIT: 0.0}
#: The device's `system/statistics` interrupt counters (+ homemeter's per-cause ones), always reported.
INTERRUPT_COUNTERS = (
    "totalInterrupts",  # IRQ asserted (or, without the line, a poll found an enabled cause pending)
    "totalHandledInterrupts",  # a status read that reported a cause the driver acts on
    "zxInterrupts",  # voltage zero crossings: ZXV is not enabled (PERIOD gives the frequency)
    "servicePasses",  # RSTIRQSTATA reads by the sampling thread
    "unhandledInterrupts",  # a status read with no known cause (noise on the line, a lost status)
    "cycEndInterrupts",  # line-cycle windows ended
    "resetInterrupts",  # the chip reset itself (not our own RESET pulse)
    "crcInterrupts",  # configuration checksum changed (ours expected, others rewritten)
)


class ChipReset(BusError):
    """The chip reports a reset it was not asked for (supply glitch): every register is default."""


@dataclass(frozen=True, slots=True)
class _Channels:
    """Per-channel facts derived from the configuration once, not per reading."""

    scales: tuple[ChannelScale, ...]
    angle_path: tuple[bool, ...]  # on another line than channel 0: IRMS and ANGLE, not energies
    theta: tuple[float, ...]  # phase angle relative to channel 0's line, degrees


def _channels(configs: tuple[ChannelConfig, ...], board: BoardProfile) -> _Channels:
    ref = configs[0].phase
    return _Channels(
        scales=tuple(ChannelScale.of(c.ctSpecification, board) for c in configs),
        angle_path=tuple(
            i > 0 and c.phase is not Phase.SPLIT and c.phase is not ref for i, c in enumerate(configs)
        ),
        theta=tuple(_THETA[c.phase] - _THETA[ref] for c in configs),
    )


class Ade7953Source:
    """A `SampleSource` (plus configuration, health and raw registers) for one ADE7953 board."""

    blocking = True  # SPI and GPIO: the meter samples off the event loop

    def __init__(
        self,
        chip: Chip,
        board: BoardProfile,
        channel_count: int,
        factory: Callable[[int], tuple[ChannelConfig, ...]] | None = None,
        sync: Callable[[float], None] | None = None,
    ) -> None:
        """`factory`: the first-start channel table (default: the device's); `sync(at)`: bring an
        emulated chip to the meter's time before each window (hardware keeps its own time)."""
        check_channels(board, channel_count)
        self._chip = chip
        self._clock = chip.clock
        self._lines = chip.lines
        self._board = board
        self._factory = factory
        self._sync = sync
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        config = AppConfig(channels=self.factory_channels(channel_count))
        self._config = config
        self._derived = _channels(config.channels, board)
        self._dirty = True  # configuration not yet written to the chip
        self._written: AppConfig | None = None
        # Chip state, owned by the sampling thread (under the lock).
        self._ready = False
        self._state = "starting"
        self._error: str | None = None
        self._failures = 0  # consecutive failed windows
        self._attempts = 0  # consecutive failed initialisations
        self._next_init = -math.inf
        self._linecyc = 0
        self._cycle = 0  # CYCENDs seen since start
        self._init_cycle = 0
        self._switch_cycle = 0
        self._fresh = False  # `advance` saw a new window that `measure` may read
        self._no_cycles = False
        self._expect_crc = False
        self._cycle_at = -math.inf
        self._want: int | None = None  # multiplexer input the meter announced
        self._input: int | None = None  # multiplexer input the lines are driving
        self._voltage: float | None = None
        self._frequency = 50.0
        self._version: int | None = None
        self._capture = WaveformCapture()

    @property
    def waveform(self) -> WaveformCapture:
        return self._capture

    def arm_waveform(self, channel: int) -> None:
        """Captured on the sampling thread right after the channel's next good reading."""
        self._capture.arm(channel)

    # ----------------------------------------------------------------- SampleSource
    def factory_channels(self, count: int) -> tuple[ChannelConfig, ...]:
        if self._factory is not None:
            return self._factory(count)
        return tuple(ChannelConfig.default(i) for i in range(count))

    def select(self, channel: int) -> None:
        if not 1 <= channel <= len(self._board.mux_inputs):
            return  # the device ignores an input the multiplexer does not have
        with self._lock:
            self._want = self._board.mux_inputs[channel - 1]
            if self._ready and self._want != self._input:
                try:
                    self._switch(self._want)
                except Ade7953Error as err:
                    self._trouble(err)

    def advance(self, at: float) -> None:
        with self._lock:
            if self._sync is not None:
                self._sync(at)
            self._fresh = False
            try:
                if not self._ready:
                    if self._clock.monotonic() < self._next_init:
                        return
                    self._initialise()
                if self._dirty:
                    self._write_configuration()
                self._await_window()
            except Ade7953Error as err:
                self._trouble(err)

    def measure(self, channel: int, at: float) -> Measurement:
        with self._lock:
            if not self._ready:
                raise BusError(self._error or "ADE7953 is not initialised yet")
            if not self._fresh:
                raise Glitch(self._error or "no new line-cycle window since the last reading")
            if self._cycle - self._init_cycle < 2:
                self.counters["partialWindows"] += 1
                raise Glitch("first line-cycle window after initialisation is partial: skipped")
            try:
                measured = self._measure_a() if channel == 0 else self._measure_b(channel)
            except Glitch:
                self.counters["discarded"] += 1
                raise
            except BusError as err:
                self._trouble(err)
                raise
            if self._capture.wanted == channel:
                # Now the multiplexer is on the channel and settled (the device's moment, too).
                self._capture.run(channel, lambda: self._sample_waveform(channel))
            return measured

    def grid_frequency(self, at: float) -> float:
        """From the PERIOD register read with the last channel-0 reading (no extra SPI access)."""
        return self._frequency

    # ----------------------------------------------------------------- configuration
    def configure(self, config: AppConfig) -> None:
        try:
            calibration_writes(config.ade7953)
        except ValueError as err:
            raise ConfigRejected(f"ade7953.{err}") from err
        # Reference swaps only: the sampling thread picks them up at its next window.
        self._derived = _channels(config.channels, self._board)
        self._config = config
        self._dirty = True

    def _write_configuration(self) -> None:
        config = self._config
        chip = self._chip
        written = self._written
        if written is None or written.ade7953 != config.ade7953:
            self._expect_crc = True
            for reg, value in calibration_writes(config.ade7953):
                chip.write(reg, value)
        linecyc = line_cycles(config.sampleTime, self._frequency)
        if linecyc != self._linecyc:
            self._expect_crc = True
            chip.write(r.LINECYC, linecyc)
            self._linecyc = linecyc
            self._init_cycle = self._cycle  # the window in progress mixes two lengths
        self._written = config
        self._dirty = False

    # ----------------------------------------------------------------- set-up and recovery
    def _initialise(self) -> None:
        chip = self._chip
        self.counters["initialisations"] += 1
        chip.hard_reset()
        chip.check_alive()
        chip.configure_defaults()
        period = chip.read(r.PERIOD)
        if period and FREQUENCY_RANGE[0] <= frequency_of(period) <= FREQUENCY_RANGE[1]:
            self._frequency = frequency_of(period)
        self._written = None
        self._linecyc = 0
        self._write_configuration()
        chip.write(r.IRQENA, r.IRQ_ENABLED)
        chip.read(r.RSTIRQSTATA)  # our own reset, the writes' CRC changes: all expected
        chip.read(r.RSTIRQSTATB)
        self._version = chip.read(r.VERSION)
        self._expect_crc = False
        self._ready = True
        self._init_cycle = self._switch_cycle = self._cycle
        self._cycle_at = self._clock.monotonic()
        self._voltage = None
        self._input = None
        if self._want is not None:
            self._switch(self._want)
        if self._error is not None:
            log.info("ADE7953 on %s answers again; initialised", chip.where)
        self._state, self._error = "running", None
        self._failures = 0  # `_attempts` is reset by the first window: a set-up is not yet a recovery
        self._no_cycles = False

    def _trouble(self, err: Ade7953Error) -> None:
        """Record a failure; a bus failure, a reset or too many bad windows set the chip up again."""
        first = self._error is None
        self._error = str(err)
        self.counters["errors"] += 1
        lost = isinstance(err, BusError) or self._failures >= REINIT_AFTER
        if isinstance(err, ChipReset):
            self.counters["chipResets"] += 1
        if first:
            log.warning("ADE7953 failure: %s", err)
        else:
            log.debug("ADE7953 failure: %s", err)
        if not lost:
            self._failures += 1
            return
        self._ready = False
        self._fresh = False
        self._state = "unreachable"
        # A reset is answered at once; a chip that does not answer is retried ever more slowly.
        delay = 0.0 if isinstance(err, ChipReset) else BACKOFF_S[min(self._attempts, len(BACKOFF_S) - 1)]
        self._attempts += 1
        self._next_init = self._clock.monotonic() + delay

    def _await_window(self) -> None:
        """Wait (bounded) for CYCEND; handle RESET and CRC changes reported with it."""
        chip, clock = self._chip, self._clock
        window = self._linecyc / (2.0 * self._frequency)
        # After a timeout only look once per call, so a dead line does not stall the meter.
        deadline = clock.monotonic() + (0.0 if self._no_cycles else window + CYCLE_GRACE_S)
        status = 0
        while True:
            if self._pending(deadline, self._cycle_at + window):
                status |= chip.read(r.RSTIRQSTATA)
                if status & (r.IRQ_CYCEND | r.IRQ_RESET):
                    break
            elif clock.monotonic() >= deadline:
                status |= chip.read(r.RSTIRQSTATA)  # one look: a bus error is more telling than silence
                break
        if not self._handle(status, signalled=status != 0):
            self.counters["cycleTimeouts"] += 1
            self._no_cycles = True
            self._state = "no-line-cycles"
            raise Glitch(
                f"no line-cycle interrupt from the ADE7953 on {chip.where} within "
                f"{CYCLE_GRACE_S:.0f} s after the window: is the voltage input connected?"
            )
        self._fresh = True
        self._failures = self._attempts = 0
        if self._no_cycles or self._state != "running":
            self._state, self._no_cycles = "running", False
        if self._error is not None:
            log.info("ADE7953 readings resumed")
            self._error = None

    def _pending(self, deadline: float, due: float) -> bool:
        """Wait until the chip signals an interrupt or `deadline`; True if one is pending.

        With the IRQ line this is a GPIO wait and costs no SPI frame. Without it the status is polled
        (one unverified frame a poll), starting shortly before the window is `due` to end.
        """
        clock = self._clock
        now = clock.monotonic()
        if self._lines.has_interrupt:
            if self._lines.wait_interrupt(max(deadline - now, 0.0)):
                self.counters["totalInterrupts"] += 1
                return True
            return False
        while True:
            if self._chip.peek(r.IRQSTATA) & r.IRQ_ENABLED:
                self.counters["totalInterrupts"] += 1
                return True
            now = clock.monotonic()
            if now >= deadline:
                return False
            clock.sleep(min(deadline - now, max(POLL_S, due - now)))

    def _handle(self, status: int, signalled: bool = True) -> bool:
        """Act on an RSTIRQSTATA value; True if it reports a new line-cycle window."""
        counters = self.counters
        counters["servicePasses"] += 1
        if status & (r.IRQ_ENABLED | r.IRQ_ZXV):
            counters["totalHandledInterrupts"] += 1
        elif signalled:
            counters["unhandledInterrupts"] += 1
        if status & r.IRQ_ZXV:
            counters["zxInterrupts"] += 1
        if status & r.IRQ_CRC:
            counters["crcInterrupts"] += 1
        if status & r.IRQ_RESET:
            counters["resetInterrupts"] += 1
            raise ChipReset(f"ADE7953 on {self._chip.where} reset itself (supply glitch?); set up again")
        if status & r.IRQ_CRC and not self._expect_crc:
            # Something changed a configuration register behind our back: write it all again.
            self.counters["unexpectedCrc"] += 1
            self._written = None
            self._dirty = True
        self._expect_crc = False
        if status & r.IRQ_CYCEND:
            self._cycle += 1
            self._cycle_at = self._clock.monotonic()
            counters["windows"] += 1
            counters["cycEndInterrupts"] += 1
            return True
        return False

    def _switch(self, number: int) -> None:
        # A window that ended before the switch is taken now, so the one spanning it is never read.
        if self._pending(-math.inf, -math.inf):
            self._handle(self._chip.read(r.RSTIRQSTATA))
        self._lines.select_input(number)
        self._input = number
        self._switch_cycle = self._cycle
        self.counters["muxSwitches"] += 1

    # ----------------------------------------------------------------- readings
    def _measure_a(self) -> Measurement:
        chip = self._chip
        e_p, e_q, e_s = chip.read(r.AENERGYA), chip.read(r.RENERGYA), chip.read(r.APENERGYA)
        vrms, irms, period = chip.read(r.VRMS), chip.read(r.IRMSA), chip.read(r.PERIOD)
        if period and FREQUENCY_RANGE[0] <= frequency_of(period) <= FREQUENCY_RANGE[1]:
            self._frequency = frequency_of(period)
        self._voltage = voltage = vrms * self._board.volts_per_lsb
        return self._from_energies(0, voltage, (e_p, e_q, e_s), irms)

    def _measure_b(self, channel: int) -> Measurement:
        if self._input is None or self._input != self._want:
            raise Glitch(f"channel {channel}: the multiplexer is not on its input")
        if self._cycle - self._switch_cycle < 2:
            self.counters["settling"] += 1
            raise Glitch(f"channel {channel}: the multiplexer is still settling")
        chip = self._chip
        voltage = self._voltage
        if voltage is None:
            voltage = self._voltage = chip.read(r.VRMS) * self._board.volts_per_lsb
        derived = self._derived
        if derived.angle_path[channel]:
            return self._from_angle(channel, voltage, chip.read(r.IRMSB), chip.read(r.ANGLE_B))
        e_p, e_q, e_s = chip.read(r.AENERGYB), chip.read(r.RENERGYB), chip.read(r.APENERGYB)
        return self._from_energies(channel, voltage, (e_p, e_q, e_s), chip.read(r.IRMSB))

    def _from_energies(
        self, channel: int, v: float, energies: tuple[int, int, int], irms: int
    ) -> Measurement:
        scale = self._derived.scales[channel]
        e_p, e_q, e_s = energies
        # Power from the true window length LINECYC / (2 f), not the nominal sample time: the
        # device's way scales every power by 5/6 or 6/5 after a wrong 50/60 Hz guess.
        k = scale.wh_per_lsb * 3600.0 * 2.0 * self._frequency / self._linecyc
        p, q, s = e_p * k, e_q * k, abs(e_s * k)
        s_rms = v * irms * scale.amps_per_lsb
        if s_rms > WITNESS_FLOOR * scale.rated_current * v and abs(s - s_rms) > WITNESS_TOLERANCE * s_rms:
            self.counters["witnessDiscards"] += 1
            raise Glitch(f"channel {channel}: energy says {s:.1f} VA, RMS says {s_rms:.1f} VA: discarded")
        return Measurement(v, s / v if v > 0.0 else 0.0, p, q, s)

    def _from_angle(self, channel: int, v: float, irms: int, angle: int) -> Measurement:
        """A channel on another line: the chip's energies mix two phases, so use IRMS and ANGLE."""
        scale = self._derived.scales[channel]
        i = irms * scale.amps_per_lsb
        if i < ANGLE_NOLOAD * scale.rated_current:
            return Measurement(v, 0.0, 0.0, 0.0, 0.0)
        # Load angle: wrap into (-180, 180], then fold a reverse flow into [-90, 90] and flip P and Q.
        phi = angle_degrees(angle, self._frequency) + self._derived.theta[channel]
        phi = 180.0 - (180.0 - phi) % 360.0
        flip = 1.0
        if abs(phi) > 90.0:
            phi -= math.copysign(180.0, phi)
            flip = -1.0
        s = v * i
        rad = math.radians(phi)
        return Measurement(v, i, s * math.cos(rad) * flip, s * math.sin(rad) * flip, s)

    # ----------------------------------------------------------------- waveform capture
    def _sample_waveform(self, channel: int) -> Waveform:
        """Poll V and the channel's current (unverified, as the device) from a positive-going
        voltage zero crossing for 4 line cycles, paced at the device's ~7 kHz; bounded in time."""
        chip, clock = self._chip, self._clock
        cfg = self._config.channels[channel]
        current_reg = r.IA if channel == 0 else r.IB
        scale = self._derived.scales[channel]
        flip = -1.0 if cfg.reverse else 1.0
        v_lsb = self._board.volts_per_lsb / INSTANT_PER_RMS_LSB
        i_lsb = scale.amps_per_lsb / INSTANT_PER_RMS_LSB * (1.0 + cfg.ctSpecification.scalingFraction) * flip
        period = 1.0 / self._frequency
        step = 1.0 / SAMPLE_RATE_HZ
        due = clock.monotonic()
        deadline = due + 1.5 * period
        previous = chip.peek(r.V)
        while True:
            due = self._pace(due + step)
            sample = chip.peek(r.V)
            if previous < 0 <= sample:
                break
            previous = sample
            if clock.monotonic() > deadline:
                raise Glitch(f"channel {channel}: no voltage zero crossing in {1.5 * period * 1000:.0f} ms")
        start, wall = clock.monotonic(), time.time()
        end = start + CYCLES * period
        volts: list[float] = []
        amps: list[float] = []
        micros: list[int] = []
        now = start
        while now < end and len(volts) < MAX_SAMPLES:
            v, i = chip.peek(r.V), chip.peek(current_reg)
            now = clock.monotonic()
            volts.append(v * v_lsb)
            amps.append(i * i_lsb)
            micros.append(round((now - start) * 1e6))
            due = self._pace(due + step)
        reference = self._config.channels[0].phase
        return Waveform(channel, int(wall * 1000), int(start * 1e6), int(reference), int(cfg.phase),
                        tuple(volts), tuple(amps), tuple(micros))  # fmt: skip

    def _pace(self, due: float) -> float:
        """Sleep until `due` if ahead of it; behind it (a slow bus), go on at once from now."""
        now = self._clock.monotonic()
        if due > now:
            self._clock.sleep(due - now)
            return due
        return now

    # ----------------------------------------------------------------- health and raw access
    def health(self) -> SourceHealth:
        # dict() of a Counter is one C-level copy: safe while the sampling thread adds keys.
        counters = dict.fromkeys(INTERRUPT_COUNTERS, 0) | dict(self.counters)
        for key, value in dict(self._chip.counters).items():
            counters[key] = counters.get(key, 0) + value
        counters["frames"] = self._chip.frames
        return SourceHealth(
            state=self._state,
            ok=self._state == "running",
            last_error=self._error,
            counters=MappingProxyType(counters),
            details=MappingProxyType(
                {
                    "device": self._chip.where,
                    "siliconVersion": self._version,
                    "lineCycles": self._linecyc,
                    "frequency": round(self._frequency, 3),
                    "multiplexerInput": self._input,
                }
            ),
        )

    def read_register(self, address: int, bits: int, signed: bool) -> int:
        reg = _raw_view(address, bits, signed)
        with self._lock:
            return self._chip.read(reg)

    def write_register(self, address: int, bits: int, value: int) -> None:
        reg = _raw_view(address, bits, value < 0)
        with self._lock:
            self._expect_crc = True
            self._chip.write(reg, value)

    def close(self) -> None:
        with self._lock:
            self._ready = False
            self._chip.close()


def check_channels(board: BoardProfile, channel_count: int) -> None:
    if channel_count > board.channels:
        raise ConfigError(
            f"channels: this board has {board.channels} channels, {channel_count} were asked for; "
            f"run with --channels {board.channels} (or choose the board with --board)"
        )


def _raw_view(address: int, bits: int, signed: bool) -> Register:
    """Any address at any width, as the register-tester page asks (ValueError for other widths)."""
    if bits not in (8, 16, 24, 32):
        raise ValueError("bits must be 8, 16, 24 or 32")
    known = r.BY_ADDRESS.get(address)
    if known is not None and known.bits == bits and known.signed == signed:
        return known
    writable = known.writable if known is not None else True
    clears = known.clears_on_read if known is not None else False
    return Register(f"0x{address:03X}", address, bits, signed, writable=writable, clears_on_read=clears)
