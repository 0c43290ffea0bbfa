"""SPI frames of every register width, as the reference describes them, and through the chip."""

from __future__ import annotations

import pytest

from homemeter.meter.sources.ade7953 import registers as r
from homemeter.meter.sources.ade7953.chip import Chip
from homemeter.meter.sources.ade7953.frames import decode, encode, read_frame, write_frame
from tests.unit.ade7953_rig import rig


@pytest.mark.parametrize(
    ("reg", "frame"),
    [
        (r.LCYCMODE, b"\x00\x04\x80\x00"),
        (r.LINECYC, b"\x01\x01\x80\x00\x00"),
        (r.BY_ADDRESS[0x21E], b"\x02\x1e\x80\x00\x00\x00"),  # AENERGYA, 24-bit view
        (r.AENERGYA, b"\x03\x1e\x80\x00\x00\x00\x00"),
    ],
)
def test_read_frame_is_address_command_then_filler(reg: r.Register, frame: bytes) -> None:
    assert read_frame(reg.address, reg.nbytes) == frame


@pytest.mark.parametrize(
    ("reg", "value", "frame"),
    [
        (r.UNLOCK, 0xAD, b"\x00\xfe\x00\xad"),
        (r.CONFIG, 0xA10C, b"\x01\x02\x00\xa1\x0c"),
        (r.BY_ADDRESS[0x203], 51_251, b"\x02\x03\x00\x00\xc8\x33"),  # AP_NOLOAD, 24-bit view
        (r.AP_NOLOAD, 51_251, b"\x03\x03\x00\x00\x00\xc8\x33"),
        (r.AWATTOS, -2, b"\x03\x89\x00\xff\xff\xff\xfe"),  # 32-bit view: the top byte extends the sign
        (r.BY_ADDRESS[0x289], -2, b"\x02\x89\x00\xff\xff\xfe"),
        (r.PHCALA, -5, b"\x01\x08\x00\x02\x05"),  # sign-magnitude, not two's complement
        (r.PHCALB, 5, b"\x01\x09\x00\x00\x05"),
    ],
)
def test_write_frame_of_every_width_and_encoding(reg: r.Register, value: int, frame: bytes) -> None:
    assert write_frame(reg.address, reg.nbytes, encode(reg, value)) == frame


@pytest.mark.parametrize(
    ("reg", "raw", "value"),
    [
        (r.AENERGYA, 0xFFFFFFFE, -2),
        (r.BY_ADDRESS[0x21E], 0xFFFFFE, -2),
        (r.VRMS, 0x0089D1B7, 9_032_119),
        (r.ANGLE_B, 0xFFF6, -10),
        (r.PERIOD, 4474, 4474),
        (r.PHCALA, 0x205, -5),
    ],
)
def test_decode_signed_unsigned_and_sign_magnitude(reg: r.Register, raw: int, value: int) -> None:
    assert decode(reg, raw) == value


@pytest.mark.parametrize(
    ("reg", "value"),
    [(r.LCYCMODE, 256), (r.LINECYC, -1), (r.AIGAIN, 1 << 24), (r.AWATTOS, 1 << 23), (r.PHCALA, 512)],
)
def test_values_the_register_cannot_hold_are_refused(reg: r.Register, value: int) -> None:
    with pytest.raises(ValueError, match=reg.name):
        encode(reg, value)


def test_register_table_views_and_echoes() -> None:
    # Every 24-bit register is reachable as 0x2xx (3 bytes) and 0x3xx (4 bytes).
    for reg in r.BY_ADDRESS.values():
        if reg.bits == 32 and reg is not r.LAST_RWDATA32:
            view = r.BY_ADDRESS[reg.address - 0x100]
            assert (view.bits, view.signed, view.default) == (24, reg.signed, reg.default)
    echoes = {bits: e.address for bits, e in r.ECHO_BY_BITS.items()}
    assert echoes == {8: 0x0FF, 16: 0x1FF, 24: 0x2FF, 32: 0x3FF}
    assert (r.AP_NOLOAD.default, r.LCYCMODE.default, r.CONFIG.default, r.IRQENA.default) == (
        0xE419,
        0x40,
        0x8004,
        0x100000,
    )


@pytest.mark.parametrize(
    ("address", "value"),
    [
        (0x004, 0x3F),  # 8-bit
        (0x101, 1000),  # 16-bit
        (0x109, -300),  # 16-bit sign-magnitude
        (0x289, -123_456),  # 24-bit view, signed
        (0x380, 4_300_000),  # 32-bit view, unsigned
        (0x395, -7),  # 32-bit view, signed
    ],
)
def test_verified_write_then_read_through_the_emulated_chip(address: int, value: int) -> None:
    _, _, board = rig()
    chip = Chip(board, board, board, "test")
    board.run_until(0.0)
    reg = r.BY_ADDRESS[address]
    chip.write(reg, value)
    assert chip.read(reg) == value
    assert chip.frames == 8  # write + 3 echo reads, read + 3 echo reads: nothing retried
    # The other view of a 24-bit register holds the same value.
    if reg.bits in (24, 32):
        twin = r.BY_ADDRESS[address ^ 0x100]
        assert chip.read(twin) == value
