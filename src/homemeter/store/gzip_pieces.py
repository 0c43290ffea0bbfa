"""One gzip file joined from pieces compressed once, ahead of time, without compressing again.

Each piece is raw deflate ended by a sync flush: byte-aligned and not final, so pieces laid end to
end are one valid deflate stream. The result is a single ordinary gzip member (RFC 1952), which every
inflater reads (pako, DecompressionStream, zcat, Python), unlike concatenated members, where some
stop after the first. Only the CRC-32 of the whole is computed at join time, combined from the pieces'.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import NamedTuple

# Pieces are compressed once (a UTC day of 17 channels: ~14 KB in ~1 ms), so the best level is cheap;
# without a shared dictionary across pieces a year still comes out smaller than whole-file level 1.
LEVEL = 9
# magic, deflate, no flags, mtime 0 (as gzip.compress(mtime=0)), XFL 2 (best compression), OS unknown
_HEADER = bytes.fromhex("1f8b08000000000002ff")
_FINAL = b"\x03\x00"  # an empty final block (fixed Huffman): ends the deflate stream
_TRAILER = 8  # CRC-32 and size, little-endian
_ZEROS = bytes(64 * 1024)
_MASK = 0xFFFFFFFF


class Piece(NamedTuple):
    size: int  # uncompressed bytes
    crc: int  # CRC-32 of those bytes
    deflate: bytes  # raw deflate, sync-flushed


def piece(data: bytes) -> Piece:
    """Compress `data` into a piece that can be joined with others."""
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    return Piece(len(data), zlib.crc32(data), packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH))


def _over_zeros(crc: int, count: int) -> int:
    view = memoryview(_ZEROS)
    while count > 0:
        step = min(count, len(_ZEROS))
        crc = zlib.crc32(view[:step], crc)
        count -= step
    return crc


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B), without A or B (zlib's, which Python lacks).

    crc(A+B) = shift(crc(A)) ^ crc(B), where shift is zlib's (inverted) register run over len(B)
    zero bytes: the CRC is linear in the register, and zlib runs over zeros at memory speed.
    """
    return _over_zeros(crc1 ^ _MASK, len2) ^ _MASK ^ crc2


def joined_size(packed: Iterable[int]) -> int:
    """The size of the gzip file `join` makes from pieces of these compressed sizes."""
    return len(_HEADER) + sum(packed) + len(_FINAL) + _TRAILER


def join(pieces: Iterable[Piece]) -> bytes:
    """The gzip file whose content is the pieces' data in order."""
    parts = [_HEADER]
    crc = size = 0
    for p in pieces:
        crc = crc32_combine(crc, p.crc, p.size)
        size += p.size
        parts.append(p.deflate)
    parts += [_FINAL, struct.pack("<II", crc, size & _MASK)]
    return b"".join(parts)
