"""An EnergyMe-Home device's energy history, as its files and its filesystem tar (reference meter.md 6).

Four UTC days from `start`: the first two consolidated into the yearly archive, the third in the
monthly archive (and still as the transient `daily/<day>.csv.gz` the device deletes after merging
it), the first six hours of the fourth in today's plain `daily/<day>.csv`. Channel 0 imports and
exports; channel 1 imports, and its counter goes 100 Wh down at hour DROP (a power cut lost what
the device had not saved). Today's file also repeats one hour (a restart near the hour writes it
twice) and has a line that is not a row. The tar adds what else a LittleFS holds.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import UTC, date, datetime, timedelta

HOUR = 3600
HEADER = "timestamp,channel,active_imported,active_exported"
CHANNELS = (0, 1)
HOURS = 3 * 24 + 6  # rows per channel: k = 0 .. HOURS - 1
DROP = 2 * 24 + 10  # channel 1's counter is lower here than an hour before
OTHER_FILES = {
    "index.html": b"<html><body>EnergyMe</body></html>",
    "css/styles.css": b"body {}",
    "config/mqtt.json": b'{"server": "test.mosquitto.org"}',
    "log.txt": b"[2026-11-01 10:00:00] boot\n",
}


def counters(channel: int, k: int) -> tuple[int, int]:
    """(imported, exported) Wh of `channel` at hour k after the start."""
    if channel == 0:
        return 50_000 + 150 * k + k * k // 10, 1_000 + 7 * k
    return 10_000 + 200 * k - (300 if k >= DROP else 0), 0


def stamp(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def lines(start: int, ks: range) -> list[str]:
    """The device's rows for hours `ks`: every channel at each hour."""
    return [
        f"{stamp(start + k * HOUR)},{c},{','.join(map(str, counters(c, k)))}" for k in ks for c in CHANNELS
    ]


def csv(rows: list[str]) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def device_files(start: int) -> dict[str, bytes]:
    """Path from the filesystem root -> content, as the device holds them on the fourth day."""
    first = datetime.fromtimestamp(start, UTC).date()
    day: list[date] = [first + timedelta(days=n) for n in range(4)]
    today = lines(start, range(72, HOURS))
    repeat = f"{stamp(start + 74 * HOUR)},0,{counters(0, 74)[0] + 3},{counters(0, 74)[1]}"
    today[6:6] = [repeat, "2026-11-02T03:00:00.000Z,zero,1,2"]
    return {
        f"energy/yearly/{day[0].year}.csv.gz": gzip.compress(csv(lines(start, range(0, 48)))),
        f"energy/monthly/{day[2]:%Y-%m}.csv.gz": gzip.compress(csv(lines(start, range(48, 72)))),
        f"energy/daily/{day[2]}.csv.gz": gzip.compress(csv(lines(start, range(48, 72)))),
        f"energy/daily/{day[3]}.csv": csv(today),
    }


def expected_hourly(channel: int) -> list[tuple[float, float]]:
    """What each hour [k, k+1) of the history holds: counter differences, nothing for a decrease."""
    out = []
    for k in range(HOURS - 1):
        (i0, e0), (i1, e1) = counters(channel, k), counters(channel, k + 1)
        out.append((float(max(0, i1 - i0)), float(max(0, e1 - e0))))
    return out


def filesystem_tar(files: dict[str, bytes], prefix: str = "") -> bytes:
    """The device's `GET /api/v1/backup/filesystem`: an uncompressed tar of the whole LittleFS."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, content in {**OTHER_FILES, **files}.items():
            info = tarfile.TarInfo(prefix + path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def day_start(days_ago: int) -> int:
    """00:00 UTC `days_ago` days before today."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((today - timedelta(days=days_ago)).timestamp())
