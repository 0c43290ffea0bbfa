"""The ADE7953 register map (reference meter.md 4.4, datasheet Rev. C): one table, used by the driver,
the raw-register endpoints and the emulator.

24-bit registers have two addresses: 0x2xx (3 data bytes) and 0x3xx (4 bytes, the top one a sign or
zero extension). The driver uses the 32-bit views throughout, so a read decodes directly as a
big-endian int32 or uint32.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Register:
    """One register view: address, data width, how its bits read, what a reset leaves in it."""

    name: str
    address: int
    bits: int  # 8, 16, 24 or 32 (data bytes on the wire: bits // 8)
    signed: bool = False
    default: int = 0  # after power-on or a RESET pulse
    writable: bool = False
    clears_on_read: bool = False  # RSTIRQSTATx: a read returns the status and clears it
    sign_magnitude: bool = False  # PHCALx: bit 9 is the sign, bits 8..0 the magnitude

    @property
    def nbytes(self) -> int:
        return self.bits // 8


def _r8(name: str, address: int, default: int = 0, writable: bool = True) -> Register:
    return Register(name, address, 8, default=default, writable=writable)


def _r16(name: str, address: int, default: int = 0, writable: bool = True, signed: bool = False) -> Register:
    return Register(name, address, 16, signed=signed, default=default, writable=writable)


def _r32(name: str, address: int, default: int = 0, writable: bool = False, signed: bool = False) -> Register:
    return Register(name, address, 32, signed=signed, default=default, writable=writable)


# 8-bit
DISNOLOAD = _r8("DISNOLOAD", 0x001)
LCYCMODE = _r8("LCYCMODE", 0x004, default=0x40)
PGA_V = _r8("PGA_V", 0x007)
PGA_IA = _r8("PGA_IA", 0x008)
PGA_IB = _r8("PGA_IB", 0x009)
LAST_OP = _r8("LAST_OP", 0x0FD, writable=False)
UNLOCK = _r8("UNLOCK", 0x0FE)  # 0xAD here, immediately before writing RESERVED_120
LAST_RWDATA8 = _r8("LAST_RWDATA8", 0x0FF, writable=False)
VERSION = _r8("VERSION", 0x702, writable=False)
# 16-bit
LINECYC = _r16("LINECYC", 0x101)
CONFIG = _r16("CONFIG", 0x102, default=0x8004)
PHCALA = Register("PHCALA", 0x108, 16, signed=True, writable=True, sign_magnitude=True)
PHCALB = Register("PHCALB", 0x109, 16, signed=True, writable=True, sign_magnitude=True)
ANGLE_A = _r16("ANGLE_A", 0x10C, writable=False, signed=True)
ANGLE_B = _r16("ANGLE_B", 0x10D, writable=False, signed=True)
PERIOD = _r16("PERIOD", 0x10E, writable=False)
RESERVED_120 = _r16("RESERVED_120", 0x120)  # "optimum settings": 0x0030 after every reset
LAST_ADD = _r16("LAST_ADD", 0x1FE, writable=False)
LAST_RWDATA16 = _r16("LAST_RWDATA16", 0x1FF, writable=False)
# 24/32-bit (32-bit views)
AP_NOLOAD = _r32("AP_NOLOAD", 0x303, default=0x00E419, writable=True)
VAR_NOLOAD = _r32("VAR_NOLOAD", 0x304, default=0x00E419, writable=True)
VA_NOLOAD = _r32("VA_NOLOAD", 0x305, default=0x000000, writable=True)
IA = _r32("IA", 0x316, signed=True)
IB = _r32("IB", 0x317, signed=True)
V = _r32("V", 0x318, signed=True)
IRMSA = _r32("IRMSA", 0x31A)
IRMSB = _r32("IRMSB", 0x31B)
VRMS = _r32("VRMS", 0x31C)
AENERGYA = _r32("AENERGYA", 0x31E, signed=True)
AENERGYB = _r32("AENERGYB", 0x31F, signed=True)
RENERGYA = _r32("RENERGYA", 0x320, signed=True)
RENERGYB = _r32("RENERGYB", 0x321, signed=True)
APENERGYA = _r32("APENERGYA", 0x322, signed=True)
APENERGYB = _r32("APENERGYB", 0x323, signed=True)
IRQENA = _r32("IRQENA", 0x32C, default=0x100000, writable=True)
IRQSTATA = _r32("IRQSTATA", 0x32D)
RSTIRQSTATA = Register("RSTIRQSTATA", 0x32E, 32, clears_on_read=True)
IRQENB = _r32("IRQENB", 0x32F, writable=True)
IRQSTATB = _r32("IRQSTATB", 0x330)
RSTIRQSTATB = Register("RSTIRQSTATB", 0x331, 32, clears_on_read=True)
AIGAIN = _r32("AIGAIN", 0x380, default=0x400000, writable=True)
AVGAIN = _r32("AVGAIN", 0x381, default=0x400000, writable=True)
AWGAIN = _r32("AWGAIN", 0x382, default=0x400000, writable=True)
AVARGAIN = _r32("AVARGAIN", 0x383, default=0x400000, writable=True)
AVAGAIN = _r32("AVAGAIN", 0x384, default=0x400000, writable=True)
AIRMSOS = _r32("AIRMSOS", 0x386, writable=True, signed=True)
VRMSOS = _r32("VRMSOS", 0x388, writable=True, signed=True)
AWATTOS = _r32("AWATTOS", 0x389, writable=True, signed=True)
AVAROS = _r32("AVAROS", 0x38A, writable=True, signed=True)
AVAOS = _r32("AVAOS", 0x38B, writable=True, signed=True)
BIGAIN = _r32("BIGAIN", 0x38C, default=0x400000, writable=True)
BWGAIN = _r32("BWGAIN", 0x38E, default=0x400000, writable=True)
BVARGAIN = _r32("BVARGAIN", 0x38F, default=0x400000, writable=True)
BVAGAIN = _r32("BVAGAIN", 0x390, default=0x400000, writable=True)
BIRMSOS = _r32("BIRMSOS", 0x392, writable=True, signed=True)
BWATTOS = _r32("BWATTOS", 0x395, writable=True, signed=True)
BVAROS = _r32("BVAROS", 0x396, writable=True, signed=True)
BVAOS = _r32("BVAOS", 0x397, writable=True, signed=True)
LAST_RWDATA32 = _r32("LAST_RWDATA32", 0x3FF)

_PRIMARY = (
    DISNOLOAD, LCYCMODE, PGA_V, PGA_IA, PGA_IB, LAST_OP, UNLOCK, LAST_RWDATA8, VERSION,
    LINECYC, CONFIG, PHCALA, PHCALB, ANGLE_A, ANGLE_B, PERIOD, RESERVED_120, LAST_ADD, LAST_RWDATA16,
    AP_NOLOAD, VAR_NOLOAD, VA_NOLOAD, IA, IB, V, IRMSA, IRMSB, VRMS,
    AENERGYA, AENERGYB, RENERGYA, RENERGYB, APENERGYA, APENERGYB,
    IRQENA, IRQSTATA, RSTIRQSTATA, IRQENB, IRQSTATB, RSTIRQSTATB,
    AIGAIN, AVGAIN, AWGAIN, AVARGAIN, AVAGAIN, AIRMSOS, VRMSOS, AWATTOS, AVAROS, AVAOS,
    BIGAIN, BWGAIN, BVARGAIN, BVAGAIN, BIRMSOS, BWATTOS, BVAROS, BVAOS, LAST_RWDATA32,
)  # fmt: skip


def _views() -> dict[int, Register]:
    table: dict[int, Register] = {}
    for reg in _PRIMARY:
        table[reg.address] = reg
        if reg.bits == 32 and reg is not LAST_RWDATA32:
            # The 24-bit view of the same register: three data bytes, no extension byte.
            table[reg.address - 0x100] = Register(
                reg.name + "_24", reg.address - 0x100, 24, reg.signed, reg.default, reg.writable,
                reg.clears_on_read,
            )  # fmt: skip
    table[0x2FF] = Register("LAST_RWDATA24", 0x2FF, 24)
    return table


#: Every register by address, 24-bit views included.
BY_ADDRESS = MappingProxyType(_views())

#: LAST_RWDATA register that echoes an access of each width.
ECHO_BY_BITS = MappingProxyType(
    {8: LAST_RWDATA8, 16: LAST_RWDATA16, 24: BY_ADDRESS[0x2FF], 32: LAST_RWDATA32}
)

# Values the driver writes or expects (reference meter.md 4.4-4.5).
AP_NOLOAD_POWER_ON = 0x00E419  # read back after a reset: proves the bus and the chip work
UNLOCK_KEY = 0xAD
OPTIMUM_SETTING = 0x0030
LCYCMODE_LINE_CYCLE = 0x3F  # line-cycle accumulation of active/reactive/apparent, A and B; no read-reset
LCYCMODE_RSTREAD = 0x40  # bit 6: energy registers reset on read (power-on default, free-running)
CONFIG_VALUE = 0xA10C  # HPF on, PF from line-cycle energies, CRC on, ZX on positive edges, no comm lock
NOLOAD_THRESHOLD = 51_251  # 65536 - 20000 / 1.4: about 1/20000 of full-scale power
LAST_OP_READ = 0x35
LAST_OP_WRITE = 0xCA

# IRQSTATA / IRQENA bits
IRQ_ZXV = 1 << 15
IRQ_CYCEND = 1 << 18
IRQ_RESET = 1 << 20  # always enabled: the chip (re)started and every register holds its default
IRQ_CRC = 1 << 21  # a configuration register changed
#: Not ZXV: the device wakes 100 times a second for its frequency filter; the meter reads PERIOD
#: with every channel-0 reading instead, so the host wakes once per line-cycle window.
IRQ_ENABLED = IRQ_CYCEND | IRQ_RESET | IRQ_CRC
