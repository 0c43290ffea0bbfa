"""A gzip file joined from pieces compressed ahead of time: every reader the device's clients use
(zlib in Python, zcat, Node's zlib and its WHATWG DecompressionStream) gets the pieces' data back."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import zlib

import pytest

from homemeter.store.gzip_pieces import crc32_combine, join, joined_size, piece


def datas() -> list[bytes]:
    rng = random.Random(7)
    lines = [f"2026-03-0{d}T{h:02d}:00:00.000Z,{c},{rng.randrange(10**7)},0\n" for d in range(1, 4)
             for h in range(24) for c in range(17)]  # fmt: skip
    csv = "".join(lines).encode()
    # empty, tiny, a day of CSV, incompressible and longer than the CRC helper's zero buffer
    return [b"", b"x", csv, rng.randbytes(70_000), csv * 3]


def test_the_joined_file_is_one_gzip_member_with_every_piece_in_order() -> None:
    parts = datas()
    pieces = [piece(d) for d in parts]
    content = join(pieces)
    assert gzip.decompress(content) == b"".join(parts)
    assert len(content) == joined_size(len(p.deflate) for p in pieces)
    # One member: the deflate stream ends exactly before the 8-byte trailer, nothing follows.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert inflater.decompress(content) == b"".join(parts) and inflater.eof and inflater.unused_data == b""
    assert gzip.decompress(join([])) == b""


def test_crc32_combine_matches_zlib_over_the_whole() -> None:
    a, b = datas()[2], datas()[3]
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b""), 0) == zlib.crc32(a)


def test_zcat_and_node_read_it() -> None:
    parts = datas()
    content = join(piece(d) for d in parts)
    zcat = subprocess.run(["gzip", "-dc"], input=content, capture_output=True, check=True, timeout=30)
    assert zcat.stdout == b"".join(parts)
    node = shutil.which("node")
    if node is None:
        missing = "nodejs is not installed: run scripts/system-deps.sh as root"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(missing)
    script = (
        "const chunks = []; process.stdin.on('data', c => chunks.push(c));"
        "process.stdin.on('end', async () => {"
        "  const data = Buffer.concat(chunks);"
        "  const a = require('zlib').gunzipSync(data);"
        "  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('gzip'));"
        "  const b = Buffer.from(await new Response(stream).arrayBuffer());"
        "  process.stdout.write(a.equals(b) ? a : 'differ'); });"
    )
    out = subprocess.run([node, "-e", script], input=content, capture_output=True, check=True, timeout=60)
    assert out.stdout == b"".join(parts)
