"""SPI frames of the ADE7953 (reference meter.md 4.3): pure encoding, shared by driver and emulator.

A frame is one chip-select period in SPI mode 0, MSB first: the 16-bit register address (high byte
first), one command byte (0x80 read, 0x00 write), then the register's data bytes, MSB first. On a
read the chip shifts the data out while the host clocks filler bytes; the host's received buffer
holds three don't-care bytes, then the data.
"""

from __future__ import annotations

from homemeter.meter.sources.ade7953.registers import Register

READ = 0x80
WRITE = 0x00
HEADER = 3  # address (2) + command (1)
SIGN_MAGNITUDE_LIMIT = 0x1FF  # PHCALx: 9 magnitude bits, bit 9 the sign


def read_frame(address: int, nbytes: int) -> bytes:
    """What the host sends to read `nbytes` data bytes at `address` (filler 0x00)."""
    return address.to_bytes(2, "big") + bytes((READ,)) + bytes(nbytes)


def write_frame(address: int, nbytes: int, raw: int) -> bytes:
    """What the host sends to write the register bits `raw` (already encoded, unsigned)."""
    return address.to_bytes(2, "big") + bytes((WRITE,)) + raw.to_bytes(nbytes, "big")


def encode(reg: Register, value: int) -> int:
    """A signed or unsigned value as the register's raw bits; ValueError if it does not fit."""
    if reg.sign_magnitude:
        if abs(value) > SIGN_MAGNITUDE_LIMIT:
            raise ValueError(f"{reg.name}: {value} outside +-{SIGN_MAGNITUDE_LIMIT}")
        return (1 << 9 | -value) if value < 0 else value
    # 32-bit views carry 24 bits of data: the top byte is only the sign (or zero) extension.
    data_bits = 24 if reg.bits == 32 else reg.bits
    if reg.signed:
        low, high = -(1 << (data_bits - 1)), (1 << (data_bits - 1)) - 1
    else:
        low, high = 0, (1 << data_bits) - 1
    if not low <= value <= high:
        raise ValueError(f"{reg.name}: {value} outside {low}..{high}")
    return value & ((1 << reg.bits) - 1)


def decode(reg: Register, raw: int) -> int:
    """Raw register bits (as many as the view carries) to the value they mean."""
    if reg.sign_magnitude:
        magnitude = raw & SIGN_MAGNITUDE_LIMIT
        return -magnitude if raw & (1 << 9) else magnitude
    if reg.signed and raw & (1 << (reg.bits - 1)):
        return raw - (1 << reg.bits)
    return raw


def data_of(rx: bytes, nbytes: int) -> int:
    """The unsigned data of a received read frame."""
    return int.from_bytes(rx[HEADER : HEADER + nbytes], "big")
