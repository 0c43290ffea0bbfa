"""A register-level emulator of an ADE7953 board (chip, 74HC4067, front end), driven by the household.

It implements the same `SpiBus`, `ControlLines` and `Clock` as Linux does, so the whole driver runs
unchanged against it: frames in, frames out, RESET and IRQ lines, select lines. Its time is the
meter's (`run_until(at)` before each window) plus whatever the driver waits, so a test runs a
simulated day as fast as the code allows and a wait never sleeps for real.

What it models (reference meter.md 4.9): line-cycle windows of LINECYC / (2 f) with the household's
frequency, signed active/reactive/apparent energies latched per window for channel A (channel 0)
and channel B (the multiplexer's input) with the fractional LSB carried on, the no-load thresholds,
ADC clipping at full scale, VRMS/IRMS/ANGLE/PERIOD, the gain, offset and phase registers, the
LAST_ADD/LAST_OP/LAST_RWDATA echo, the unlock key, RSTIRQSTATA and the IRQ line, read-reset in
free-running mode, power-on defaults after RESET. The window during which the multiplexer switched
mixes the two inputs, as the real one does, so skipping it matters.

The emulated board reads its inputs with the error the default calibration corrects (AVGAIN
4 050 000, xIGAIN 4 300 000): with the stored defaults the readings are true, with unity gains
they are off by the board's error, as on a real board.

Fault injection (`faults`): a stuck bus (MISO held), failing transfers (EIO), corrupted frames
(a bit flipped on the wire, either way), no mains on the voltage input (no line cycles) and
`power_glitch()` (the chip resets mid-run). `reference_loads` puts a known steady load on a
channel in place of the household's, as a calibration bench does.

Modelling choices where the datasheet was not at hand: IRMSOS adds IRMSOS x 2^8 to IRMS squared;
one PHCAL LSB delays the current by 1.117 us; the CRC interrupt fires on any change of a writable
register other than the interrupt enables and the unlock key.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from random import Random

from homemeter.config.channel import CtSpecification
from homemeter.config.roles import Phase
from homemeter.meter.source import Measurement
from homemeter.meter.sources.ade7953 import registers as r
from homemeter.meter.sources.ade7953.conversion import (
    ENERGY_RATE,
    FULL_SCALE_INPUT,
    FULL_SCALE_RMS,
    INSTANT_FULL_SCALE,
    PERIOD_CLOCK,
    PHCAL_SECONDS_PER_LSB,
    UNITY_GAIN,
    BoardProfile,
)
from homemeter.meter.sources.ade7953.frames import HEADER, READ, WRITE, decode
from homemeter.meter.sources.ade7953.registers import Register
from homemeter.meter.sources.simulator import HouseholdSimulator

#: The board's own error, which the device's default calibration cancels.
VOLTAGE_ERROR = UNITY_GAIN / 4_050_000
CURRENT_ERROR = UNITY_GAIN / 4_300_000
MAX_GAP_S = 60.0  # a longer jump of the meter's clock restarts the windows instead of replaying them
FREE_RUN_TICK_S = 0.2  # accumulation step when line-cycle mode is off
WATT_FULL_SCALE = 4_862_401  # xWATT register at full-scale inputs; xWATTOS counts 1/512 of its LSB
_LINE_THETA = {Phase.L1: 0.0, Phase.L2: -120.0, Phase.L3: 120.0, Phase.SPLIT: 0.0}
_NO_CRC = frozenset({r.UNLOCK.address, r.IRQENA.address, r.IRQENB.address})
_ECHOES = frozenset(reg.address for reg in r.ECHO_BY_BITS.values()) | {r.LAST_ADD.address, r.LAST_OP.address}
_ZERO = Measurement(0.0, 0.0, 0.0, 0.0, 0.0)
_HEAD = bytes(HEADER)


@dataclass
class Faults:
    """What is wrong with the board right now; tests change it mid-run."""

    stuck: int | None = None  # MISO held at this byte (0x00 or 0xFF); the chip sees nothing
    io_error: bool = False  # every transfer fails as spidev does when the controller errors
    corrupt: float = 0.0  # probability per frame that one bit flips on the wire
    no_mains: bool = False  # the voltage input is disconnected: no zero crossings, no line cycles
    rng: Random = field(default_factory=lambda: Random(0))


@dataclass(frozen=True, slots=True)
class Wiring:
    """Which household circuit each input carries, its CT, and on which line it sits."""

    channel_of_input: Mapping[int, int]  # multiplexer input -> household channel (channel B)
    cts: Mapping[int, CtSpecification]  # household channel -> CT fitted on the board
    lines: Mapping[int, Phase] = field(default_factory=dict)  # household channel -> line (L1)
    phase_error_deg: Mapping[int, float] = field(default_factory=dict)  # CT phase lag, degrees
    channel_a: int = 0  # household channel on current channel A


@dataclass
class _Side:
    """Channel A or B: accumulators with their carried fractions, and the RMS/angle results."""

    energy: list[int] = field(default_factory=lambda: [0, 0, 0])  # latched or running, LSB
    carry: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    irms: int = 0
    angle: int = 0
    truth: Measurement = _ZERO  # what the household drew in the last window (for tests)
    channel: int | None = None  # household channel behind it in the last window
    mixed: bool = False  # the last window spanned a multiplexer switch


class EmulatedBoard:
    """ADE7953 + multiplexer + front end; `SpiBus`, `ControlLines` and `Clock` at once."""

    def __init__(
        self,
        household: HouseholdSimulator,
        board: BoardProfile,
        wiring: Wiring,
        *,
        interrupt_line: bool = True,
        faults: Faults | None = None,
    ) -> None:
        self._house = household
        self._board = board
        self._wiring = wiring
        self.has_interrupt = interrupt_line
        self.faults = faults or Faults()
        self._t: float | None = None
        self._input = 0
        self._switched_at = -math.inf
        self._previous_input = 0
        self._held = False
        self._glitch = False
        self.transfers = 0
        self.windows = 0
        #: Household channel -> a steady load measured instead of the house (a calibration bench).
        self.reference_loads: dict[int, Measurement] = {}
        self._power_on()
        self._readers = self._build_readers()

    # ----------------------------------------------------------------- chip state
    def _power_on(self) -> None:
        self._regs: dict[int, int] = {}
        for reg in r.BY_ADDRESS.values():
            if reg.bits != 24:  # the 24-bit views share the 32-bit register
                self._regs[reg.address] = reg.default & ((1 << min(reg.bits, 24)) - 1)
        self._status = r.IRQ_RESET
        self._last_add = self._last_op = 0
        self._echo = [0, 0, 0, 0, 0]  # LAST_RWDATA by data bytes (index 1..4)
        self._unlocked = False
        self.a, self.b = _Side(), _Side()
        self._vrms = 0
        self._period = 0
        self._frequency = 50.0
        # The line voltage's phase (in cycles) at `_phase_t`: kept continuous when f changes.
        self._phase_t = self._t if self._t is not None else 0.0
        self._phase_cycles = 0.0
        self._restart_windows()

    def power_glitch(self) -> None:
        """The supply dips: every register back to its default and the RESET interrupt pending.

        Takes effect when the board next moves in time, so another thread may call it safely.
        """
        self._glitch = True

    def _line_cycle_mode(self) -> bool:
        return self._regs[r.LINECYC.address] > 0 and self._regs[r.LCYCMODE.address] & 0x3F != 0

    def _restart_windows(self) -> None:
        now = self._t if self._t is not None else 0.0
        self._window_start = now
        if self._line_cycle_mode():
            self._window_end = now + self._regs[r.LINECYC.address] / (2.0 * self._frequency)
        else:
            self._window_end = now + FREE_RUN_TICK_S

    # ----------------------------------------------------------------- Clock
    def monotonic(self) -> float:
        return self._t if self._t is not None else 0.0

    def sleep(self, seconds: float) -> None:
        self.run_until(self.monotonic() + max(seconds, 0.0))

    def run_until(self, t: float) -> None:
        """Move the board to time `t` (epoch s), ending every window on the way; never backwards."""
        if self._glitch:
            self._glitch = False
            self._power_on()
        if self._t is None or t - self._window_end > MAX_GAP_S:
            # First call, or the host was away (suspend): the chip simply runs on from `t`.
            self._t = t
            self._restart_windows()
            return
        while self._window_end <= t:
            self._t = self._window_end
            if not self._held and not self.faults.no_mains:
                self._end_window(self._window_end)
            self._restart_windows()
        self._t = max(self._t, t)

    # ----------------------------------------------------------------- ControlLines
    def select_input(self, number: int) -> None:
        if number != self._input:
            self._previous_input, self._input = self._input, number
            self._switched_at = self.monotonic()

    def set_reset(self, asserted: bool) -> None:
        if self._held and not asserted:
            self._power_on()
        self._held = asserted

    def wait_interrupt(self, timeout: float) -> bool:
        deadline = self.monotonic() + max(timeout, 0.0)
        while not self._irq() and self.monotonic() < deadline:
            self.run_until(min(deadline, self._window_end))
        return self._irq()

    def _irq(self) -> bool:
        return not self._held and self._status & self._regs[r.IRQENA.address] != 0

    # ----------------------------------------------------------------- SpiBus
    def transfer(self, frame: bytes) -> bytes:
        self.transfers += 1
        faults = self.faults
        if faults.io_error:
            raise OSError(errno.EIO, "Input/output error")
        if faults.stuck is not None:
            return bytes([faults.stuck]) * len(frame)
        if self._held:
            return bytes(len(frame))
        if not faults.corrupt:
            return self._frame(frame)
        corrupt_out = faults.rng.random() < faults.corrupt
        if corrupt_out and faults.rng.random() < 0.5:
            frame = _flip(frame, faults.rng)  # the chip hears something else
            corrupt_out = False
        rx = self._frame(frame)
        return _flip(rx, faults.rng) if corrupt_out else rx

    def close(self) -> None:
        """Nothing to release; the emulator can be used again."""

    def _frame(self, frame: bytes) -> bytes:
        address = frame[0] << 8 | frame[1]
        command = frame[2]
        nbytes = len(frame) - HEADER
        unlocked, self._unlocked = self._unlocked, False
        if command == READ:
            reader = self._readers.get(address)
            raw = 0
            if reader is not None and nbytes:
                get, mask, width = reader
                raw = get() & mask
                if nbytes != width:  # the chip shifts out MSB first; extra bytes read 0
                    raw = int.from_bytes((raw.to_bytes(width, "big") + bytes(nbytes))[:nbytes], "big")
            if address not in _ECHOES and nbytes <= 4:
                self._last_add, self._last_op = address, r.LAST_OP_READ
                self._echo[nbytes] = raw
            return _HEAD + raw.to_bytes(nbytes, "big")
        if command == WRITE:
            raw = int.from_bytes(frame[HEADER:], "big")
            self._write(address, nbytes, raw, unlocked)
            if nbytes <= 4:
                self._last_add, self._last_op = address, r.LAST_OP_WRITE
                self._echo[nbytes] = raw
        return bytes(len(frame))  # an unknown command: nothing happens, nothing answers

    def _build_readers(self) -> dict[int, tuple[Callable[[], int], int, int]]:
        """address -> (value now, bit mask of the view, data bytes): one lookup per read frame."""
        dynamic: dict[int, Callable[[], int]] = {
            r.LAST_ADD.address: lambda: self._last_add,
            r.LAST_OP.address: lambda: self._last_op,
            r.IRQSTATA.address: lambda: self._status,
            r.RSTIRQSTATA.address: self._read_and_clear_status,
            r.VERSION.address: lambda: 0x02,
            r.VRMS.address: lambda: self._vrms,
            r.IRMSA.address: lambda: self.a.irms,
            r.IRMSB.address: lambda: self.b.irms,
            r.ANGLE_A.address: lambda: self.a.angle,
            r.ANGLE_B.address: lambda: self.b.angle,
            r.PERIOD.address: lambda: self._period,
        }
        for bits, echo in r.ECHO_BY_BITS.items():
            dynamic[echo.address] = partial(self._echo_of, bits // 8)
        for address, (side, k) in _ENERGY.items():
            dynamic[address] = partial(self._read_energy, side, k)
        for reg in (r.IA, r.IB, r.V):
            dynamic[reg.address] = partial(self._instantaneous, reg.address)
        readers: dict[int, tuple[Callable[[], int], int, int]] = {}
        for address, reg in r.BY_ADDRESS.items():
            stored = address + 0x100 if reg.bits == 24 and address != 0x2FF else address
            get = dynamic.get(stored) or partial(self._stored_value, stored, _stored(reg))
            readers[address] = (get, (1 << reg.bits) - 1, reg.nbytes)
        return readers

    def _stored_value(self, address: int, layout: Register) -> int:
        raw = self._regs.get(address, 0)
        return decode(layout, raw) if layout.signed and not layout.sign_magnitude else raw

    def _echo_of(self, nbytes: int) -> int:
        return self._echo[nbytes]

    def _read_and_clear_status(self) -> int:
        status, self._status = self._status, 0
        return status

    def _read_energy(self, side: str, k: int) -> int:
        acc = self.a if side == "a" else self.b
        value = acc.energy[k]
        if self._regs[r.LCYCMODE.address] & r.LCYCMODE_RSTREAD:
            acc.energy[k] = 0
        return value

    def _write(self, address: int, nbytes: int, raw: int, unlocked: bool) -> None:
        reg = r.BY_ADDRESS.get(address)
        if reg is None or not reg.writable or nbytes != reg.nbytes:
            return
        if reg is r.UNLOCK:
            self._unlocked = raw == r.UNLOCK_KEY
            return
        if reg is r.RESERVED_120 and not unlocked:
            return
        stored = reg.address + 0x100 if reg.bits == 24 else reg.address
        value = raw & ((1 << min(reg.bits, 24)) - 1)
        if self._regs.get(stored) == value:
            return
        self._regs[stored] = value
        if stored not in _NO_CRC:
            self._status |= r.IRQ_CRC
        if stored in (r.LINECYC.address, r.LCYCMODE.address):
            self._restart_windows()

    # ----------------------------------------------------------------- measurement
    def _end_window(self, t: float) -> None:
        house = self._house
        house.advance(t)
        self._phase_cycles = self._cycles_at(t) % 1.0
        self._phase_t = t
        self._frequency = f = house.grid_frequency(t)
        self._period = round(PERIOD_CLOCK / f) - 1
        dt = t - self._window_start
        ch_a = self._wiring.channel_a
        m_a = self._measure(ch_a, t)
        volts = min(m_a.voltage * self._board.ratio / FULL_SCALE_INPUT, 1.0)  # clips at full scale
        self._vrms = round(self._gain(volts * FULL_SCALE_RMS * VOLTAGE_ERROR, "AVGAIN"))
        self._side(self.a, "A", dt, [(1.0, ch_a, m_a)])
        ch_b = self._wiring.channel_of_input.get(self._input)
        inputs = [(1.0, ch_b, self._measure(ch_b, t))]
        if self._window_start < self._switched_at <= t:
            # The window spans the switch: channel B saw the old input first, then the new one.
            old = self._wiring.channel_of_input.get(self._previous_input)
            share = (self._switched_at - self._window_start) / dt
            inputs = [(share, old, self._measure(old, t)), (1.0 - share, ch_b, inputs[0][2])]
        self._side(self.b, "B", dt, inputs)
        if self._line_cycle_mode():
            self._status |= r.IRQ_CYCEND
        self.windows += 1

    def _measure(self, channel: int | None, t: float) -> Measurement:
        if channel is None or channel >= self._house.channel_count:
            return _ZERO  # an input with no CT
        fixed = self.reference_loads.get(channel)
        return fixed if fixed is not None else self._house.measure(channel, t)

    def _side(
        self, side: _Side, x: str, dt: float, inputs: list[tuple[float, int | None, Measurement]]
    ) -> None:
        """End a window on one current channel fed by `inputs` (share of the window, channel, draw)."""
        rates = [0.0, 0.0, 0.0]
        irms = 0.0
        for share, channel, m in inputs:
            part, part_irms, angle = self._analog(channel, m, x)
            rates = [total + share * p for total, p in zip(rates, part, strict=True)]
            irms += share * part_irms
        _, channel, m = inputs[-1]
        side.truth, side.channel, side.mixed = m, channel, len(inputs) > 1
        side.irms = round(irms)
        side.angle = angle
        line_cycle = self._line_cycle_mode()
        for k in range(3):
            total = side.carry[k] + rates[k] * dt
            whole = int(total)
            side.carry[k] = total - whole
            value = whole if line_cycle else side.energy[k] + whole
            side.energy[k] = max(-(1 << 23) + 1, min((1 << 23) - 1, value))

    def _analog(self, channel: int | None, m: Measurement, x: str) -> tuple[list[float], float, int]:
        """(energy LSB/s for P, Q, S), IRMS and ANGLE of one input carrying `m`."""
        if channel is None or m.apparent_power <= 0.0 or m.voltage <= 0.0:
            return [0.0, 0.0, 0.0], 0.0, 0
        regs = self._regs
        ct = self._wiring.cts.get(channel, CtSpecification())
        v_fs = FULL_SCALE_INPUT / self._board.ratio
        i_fs = ct.currentRating * FULL_SCALE_INPUT / ct.voltageOutput
        v = min(m.voltage, v_fs)
        i = min(m.apparent_power / m.voltage, i_fs)  # the ADC clips at full scale
        line = self._wiring.lines.get(channel, Phase.L1)
        phcal_deg = _sign_magnitude(regs[(r.PHCALA if x == "A" else r.PHCALB).address]) * (
            360.0 * self._frequency * PHCAL_SECONDS_PER_LSB
        )
        lag = (
            math.degrees(math.atan2(m.reactive_power, m.active_power))
            - _LINE_THETA[line]
            + self._wiring.phase_error_deg.get(channel, 0.0)
            + phcal_deg
        )
        lag = 180.0 - (180.0 - lag) % 360.0
        gain_v = self._gain(VOLTAGE_ERROR, "AVGAIN")
        gain_i = self._gain(CURRENT_ERROR, f"{x}IGAIN")
        full = (v / v_fs) * (i / i_fs) * ENERGY_RATE * gain_v * gain_i  # LSB/s of |S|
        rad = math.radians(lag)
        offset_scale = ENERGY_RATE / WATT_FULL_SCALE / 512.0
        rates = [
            full * math.cos(rad) * self._gain(1.0, f"{x}WGAIN") + self._offset(f"{x}WATTOS") * offset_scale,
            full * math.sin(rad) * self._gain(1.0, f"{x}VARGAIN") + self._offset(f"{x}VAROS") * offset_scale,
            full * self._gain(1.0, f"{x}VAGAIN") + self._offset(f"{x}VAOS") * offset_scale,
        ]
        disabled = regs[r.DISNOLOAD.address]
        for k, noload in enumerate((r.AP_NOLOAD, r.VAR_NOLOAD, r.VA_NOLOAD)):
            threshold = _noload_fraction(regs[noload.address]) * ENERGY_RATE
            if not disabled & (1 << k) and abs(rates[k]) < threshold:
                rates[k] = 0.0
        irms_ideal = i / ct.currentRating * ct.voltageOutput / FULL_SCALE_INPUT * FULL_SCALE_RMS * gain_i
        offset = self._offset(f"{x}IRMSOS")
        irms = math.sqrt(max(irms_ideal * irms_ideal + offset * 256.0, 0.0))
        angle = round(lag / 360.0 * PERIOD_CLOCK / self._frequency)
        return rates, irms, angle

    def _gain(self, value: float, name: str) -> float:
        reg: Register = getattr(r, name)
        return value * self._regs[reg.address] / UNITY_GAIN

    def _offset(self, name: str) -> int:
        reg: Register = getattr(r, name)
        return decode(_stored(reg), self._regs[reg.address])

    def _cycles_at(self, t: float) -> float:
        return self._phase_cycles + self._frequency * (t - self._phase_t)

    def _instantaneous(self, address: int) -> int:
        """A sample of the sine now: what waveform capture polls."""
        phase = 2.0 * math.pi * self._cycles_at(self.monotonic())
        if address == r.V.address:
            return round(self._vrms / FULL_SCALE_RMS * INSTANT_FULL_SCALE * math.sin(phase))
        side = self.a if address == r.IA.address else self.b
        amplitude = side.irms / FULL_SCALE_RMS
        lag = math.radians(side.angle * 360.0 * self._frequency / PERIOD_CLOCK)
        return round(amplitude * INSTANT_FULL_SCALE * math.sin(phase - lag))

    # ----------------------------------------------------------------- for tests
    def truth(self, channel: int) -> Measurement | None:
        """What the household drew on `channel` in the last window, if A or B carried it alone."""
        if channel == self.a.channel:
            return self.a.truth
        if channel == self.b.channel and not self.b.mixed:
            return self.b.truth
        return None

    @property
    def selected_input(self) -> int:
        return self._input


_ENERGY = {
    r.AENERGYA.address: ("a", 0),
    r.RENERGYA.address: ("a", 1),
    r.APENERGYA.address: ("a", 2),
    r.AENERGYB.address: ("b", 0),
    r.RENERGYB.address: ("b", 1),
    r.APENERGYB.address: ("b", 2),
}


def _stored(reg: Register) -> Register:
    """How the register's bits are stored: 24 data bits for the 24/32-bit registers."""
    if reg.bits == 32:
        return Register(reg.name, reg.address, 24, reg.signed)
    return reg


def _sign_magnitude(raw: int) -> int:
    magnitude = raw & 0x1FF
    return -magnitude if raw & 0x200 else magnitude


def _noload_fraction(register: int) -> float:
    """Share of full-scale power below which an energy does not accumulate (65536 - Y / 1.4)."""
    span = (65_536 - register) * 1.4
    return 1.0 / span if span >= 1.0 else 1.0


def _flip(data: bytes, rng: Random) -> bytes:
    out = bytearray(data)
    bit = rng.randrange(len(out) * 8)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)
