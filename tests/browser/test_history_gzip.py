"""Chromium's DecompressionStream (what a browser dashboard can inflate history archives with) reads a
yearly-style file joined from gzip pieces: one member, every piece's rows."""

from __future__ import annotations

import base64

from playwright.sync_api import Browser

from homemeter.store.gzip_pieces import join, piece


def test_chromium_inflates_a_file_joined_from_pieces(browser: Browser) -> None:
    def day(d: int) -> bytes:
        lines = (f"2026-01-{d:02d}T{h:02d}:00:00.000Z,{c},{d * 1000 + h * 17 + c},0\n" for h in range(24)
                 for c in range(17))  # fmt: skip
        return "".join(lines).encode()

    days = [day(d) for d in range(1, 32)]
    content = join([piece(b"timestamp,channel,active_imported,active_exported\n"), *map(piece, days)])
    page = browser.new_page()
    try:
        text = page.evaluate(
            """async (b64) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
                return await new Response(stream).text();
            }""",
            base64.b64encode(content).decode(),
        )
    finally:
        page.close()
    assert text.encode() == b"timestamp,channel,active_imported,active_exported\n" + b"".join(days)
