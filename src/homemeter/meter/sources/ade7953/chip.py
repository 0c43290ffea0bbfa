"""Register access to one ADE7953: verified reads and writes, reset and initialisation.

Every verified access is followed by reads of LAST_ADD, LAST_OP and LAST_RWDATA (reference
meter.md 4.3), so a frame corrupted on the wire is caught and retried, never taken as data (the
device returns a 0xDEADDEAD sentinel instead, which callers then treat as a value). Reading an
energy register twice is harmless in line-cycle mode without read-reset, which is what makes the
retry safe; the read-and-clear status register falls back to the echo the chip kept of it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from homemeter.meter.sources.ade7953 import registers as r
from homemeter.meter.sources.ade7953.bus import BusError, Clock, ControlLines, Glitch, SpiBus
from homemeter.meter.sources.ade7953.frames import HEADER, data_of, decode, encode, read_frame, write_frame
from homemeter.meter.sources.ade7953.registers import ECHO_BY_BITS, Register

log = logging.getLogger(__name__)

ATTEMPTS = 3  # per verified access; a clean bus never needs a second
RESET_PULSE_S = 0.2  # RESET held low, then the same again before the chip answers (reference 4.5)
_LAST_ADD_FRAME = read_frame(r.LAST_ADD.address, 2)
_LAST_OP_FRAME = read_frame(r.LAST_OP.address, 1)


@dataclass(frozen=True, slots=True)
class _Access:
    """Precomputed frames of one register view: the hot path builds no bytes."""

    reg: Register
    frame: bytes
    echo_frame: bytes
    compare_mask: int  # 32-bit views of 24-bit registers: only the 24 data bits are compared
    data: Register  # how the compared bits decode (the extension byte is rebuilt, never trusted)


def _access(reg: Register) -> _Access:
    echo = ECHO_BY_BITS[reg.bits]
    extended = reg.bits == 32 and (reg.address - 0x100) in r.BY_ADDRESS
    mask = 0xFFFFFF if extended else (1 << reg.bits) - 1
    data = Register(reg.name, reg.address, 24, reg.signed) if extended else reg
    frame, echo_frame = read_frame(reg.address, reg.nbytes), read_frame(echo.address, echo.nbytes)
    return _Access(reg, frame, echo_frame, mask, data)


class Chip:
    """One ADE7953 behind an SPI bus; not thread-safe (the source serialises access)."""

    def __init__(self, bus: SpiBus, lines: ControlLines, clock: Clock, where: str) -> None:
        self._bus = bus
        self.lines = lines
        self.clock = clock
        self.where = where  # e.g. "/dev/spidev0.0", named in every error
        self._accesses: dict[Register, _Access] = {}
        self.counters: Counter[str] = Counter()
        self.frames = 0  # an int, not a counter entry: counted on every frame of the hot path

    # ----------------------------------------------------------------- raw frames
    def _transfer(self, frame: bytes) -> bytes:
        try:
            rx = self._bus.transfer(frame)
        except OSError as err:
            raise BusError(f"SPI transfer on {self.where} failed: {err.strerror or err}") from err
        self.frames += 1
        return rx

    def peek(self, reg: Register) -> int:
        """An unverified read (status polling, where a wrong value only costs a second look)."""
        acc = self._accesses.get(reg) or self._remember(reg)
        return decode(reg, data_of(self._transfer(acc.frame), reg.nbytes))

    def poke(self, reg: Register, value: int) -> None:
        """An unverified write: the unlock key must be the frame right before the register it opens."""
        self._transfer(write_frame(reg.address, reg.nbytes, encode(reg, value)))

    def _remember(self, reg: Register) -> _Access:
        acc = self._accesses[reg] = _access(reg)
        return acc

    # ----------------------------------------------------------------- verified access
    def read(self, reg: Register) -> int:
        """The register's value, verified against the chip's record of the access."""
        acc = self._accesses.get(reg) or self._remember(reg)
        nbytes = reg.nbytes
        seen: list[int] = []
        for _ in range(ATTEMPTS):
            raw = data_of(self._transfer(acc.frame), nbytes)
            address, op, echo = self._last_access(acc)
            if address == reg.address and op == r.LAST_OP_READ:
                if (echo ^ raw) & acc.compare_mask == 0:
                    return decode(acc.data, raw & acc.compare_mask)
                if reg.clears_on_read:
                    # The read cleared the register: only the chip's echo still has the value.
                    again = data_of(self._transfer(acc.echo_frame), ECHO_BY_BITS[reg.bits].nbytes)
                    if again == echo:
                        self.counters["glitches"] += 1
                        return decode(acc.data, echo & acc.compare_mask)
            seen.append(address)
            self.counters["glitches"] += 1
        raise self._failure(f"read of {reg.name}", seen)

    def write(self, reg: Register, value: int) -> None:
        """Write and verify; ValueError if `value` does not fit the register."""
        raw = encode(reg, value)
        acc = self._accesses.get(reg) or self._remember(reg)
        frame = write_frame(reg.address, reg.nbytes, raw)
        seen: list[int] = []
        for _ in range(ATTEMPTS):
            self._transfer(frame)
            address, op, echo = self._last_access(acc)
            if address == reg.address and op == r.LAST_OP_WRITE and (echo ^ raw) & acc.compare_mask == 0:
                return
            seen.append(address)
            self.counters["glitches"] += 1
        raise self._failure(f"write of {reg.name}", seen)

    def _last_access(self, acc: _Access) -> tuple[int, int, int]:
        address = data_of(self._transfer(_LAST_ADD_FRAME), 2)
        op = self._transfer(_LAST_OP_FRAME)[HEADER]
        echo = data_of(self._transfer(acc.echo_frame), ECHO_BY_BITS[acc.reg.bits].nbytes)
        return address, op, echo

    def _failure(self, what: str, addresses: list[int]) -> BusError | Glitch:
        if all(a in (0x0000, 0xFFFF) for a in addresses):
            # Every echo read all zeros or all ones: nothing drives MISO.
            return BusError(
                f"ADE7953 on {self.where} does not answer ({what}: LAST_ADD read "
                f"0x{addresses[-1]:04X}); SPI bus stuck, chip unpowered or in reset"
            )
        return Glitch(f"{what} failed verification {ATTEMPTS} times on {self.where}")

    # ----------------------------------------------------------------- reset and set-up
    def hard_reset(self) -> None:
        """Pulse RESET: every register back to its default, the RESET interrupt pending."""
        self.lines.set_reset(True)
        self.clock.sleep(RESET_PULSE_S)
        self.lines.set_reset(False)
        self.clock.sleep(RESET_PULSE_S)

    def check_alive(self) -> None:
        """AP_NOLOAD holds 0xE419 after a reset: the one value proving that bus and chip work."""
        value = self.read(r.AP_NOLOAD)
        if value != r.AP_NOLOAD_POWER_ON:
            raise BusError(
                f"ADE7953 on {self.where} answers AP_NOLOAD 0x{value:06X} after reset, "
                f"expected 0x{r.AP_NOLOAD_POWER_ON:06X}: not an ADE7953, or not reset"
            )

    def configure_defaults(self) -> None:
        """The fixed settings (reference 4.5 step 4-5): optimum settings, gains 1, no-load, line cycles."""
        self.poke(r.UNLOCK, r.UNLOCK_KEY)
        self.write(r.RESERVED_120, r.OPTIMUM_SETTING)
        for reg in (r.PGA_V, r.PGA_IA, r.PGA_IB, r.DISNOLOAD):
            self.write(reg, 0)
        for reg in (r.AP_NOLOAD, r.VAR_NOLOAD, r.VA_NOLOAD):
            self.write(reg, r.NOLOAD_THRESHOLD)
        self.write(r.LCYCMODE, r.LCYCMODE_LINE_CYCLE)
        self.write(r.CONFIG, r.CONFIG_VALUE)

    def close(self) -> None:
        self._bus.close()
        self.lines.close()
