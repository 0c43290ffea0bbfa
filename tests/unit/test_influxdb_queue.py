"""The store-and-forward queue: durable, in order, live first, bounded by age, and counted."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from homemeter.integrations.influxdb.queue import QUEUE_FILE, PointQueue

DAY_S = 86_400.0
S = 1_000_000_000  # ns


def lines(t: int, n: int = 2) -> list[str]:
    return [f"m,channel={i} v={t}.0 {t * S}" for i in range(n)]


def sent(q: PointQueue, max_points: int = 5000, live_first: bool = True) -> list[str]:
    """Take one batch, "write" it, and return its lines."""
    batch = q.take(max_points, max_points, live_first)
    assert batch is not None
    q.remove(batch)
    return batch.body.decode().split("\n")


def test_points_survive_reopening_and_leave_only_when_removed(tmp_path: Path) -> None:
    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)
    for t in (100, 101, 102):
        q.push(t * S, lines(t))
    assert (q.points, q.oldest_ns) == (6, 100 * S)
    taken = q.take(5000, 5000)
    assert taken is not None and taken.points == 6
    q.close()  # taken, never confirmed: still there

    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)
    assert (q.points, q.oldest_ns) == (6, 100 * S)
    assert sent(q) == lines(100) + lines(101) + lines(102)  # one body, in reading order, no newline at end
    assert (q.points, q.oldest_ns, q.take(5000, 5000)) == (0, None, None)


def test_live_points_go_first_and_the_backlog_in_order_in_batches(tmp_path: Path) -> None:
    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)
    for t in range(100, 110):
        q.push(t * S, lines(t))
    q.close()
    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)  # after a restart everything is backlog
    q.push(200 * S, lines(200))  # live
    assert sent(q, 5) == lines(200)
    assert sent(q, 5) == lines(100) + lines(101)  # at most 5 points: two rows of 2
    q.push(201 * S, lines(201))  # arrives during the catch-up: next, ahead of the rest
    assert sent(q, 5) == lines(201)
    assert sent(q, 5) == lines(102) + lines(103)
    rest = []
    while q.points:
        rest += sent(q, 5)
    assert rest == [line for t in range(104, 110) for line in lines(t)]


def test_after_a_failure_everything_is_backlog_oldest_first(tmp_path: Path) -> None:
    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)
    q.push(100 * S, lines(100))
    live = q.take(5000, 5000)
    assert live is not None and live.live  # attempted, failed: not removed
    q.push(101 * S, lines(101))  # during the back-off
    retry = q.take(5000, 2, live_first=False, rewind=True)  # the retry starts with the oldest
    assert retry is not None and not retry.live and retry.body.decode().split("\n") == lines(100)
    q.remove(retry)
    q.push(102 * S, lines(102))
    assert sent(q, live_first=False) == lines(101)  # the back-off's row was backlog too
    assert sent(q) == lines(102)


def test_backlog_first_when_asked_and_live_when_there_is_none(tmp_path: Path) -> None:
    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)
    q.push(100 * S, lines(100))
    q.close()
    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)
    q.push(101 * S, lines(101))
    assert sent(q, live_first=False) == lines(100)
    assert sent(q, live_first=False) == lines(101)  # no backlog left: live rows


def test_a_row_is_sent_whole_even_above_the_batch_size(tmp_path: Path) -> None:
    q = PointQueue(tmp_path / QUEUE_FILE, 7 * DAY_S)
    q.push(100 * S, lines(100, 34))
    batch = q.take(1, 1)
    assert batch is not None and (batch.rows, batch.points) == (1, 34)


def test_the_oldest_points_are_dropped_beyond_the_age_bound_and_counted(tmp_path: Path) -> None:
    q = PointQueue(tmp_path / QUEUE_FILE, 2 * DAY_S)
    day = int(DAY_S) * S
    assert q.push(0, lines(0)) == 0
    assert q.push(day, lines(1)) == 0
    assert q.push(2 * day, lines(2)) == 0  # exactly two days: kept
    assert q.push(2 * day + S, lines(3)) == 2  # now the first is older than two days
    assert (q.points, q.dropped, q.oldest_ns) == (6, 2, day)
    taken = q.take(5000, 5000)
    assert taken is not None
    assert q.push(5 * day, lines(5)) == 6  # the batch in flight was dropped meanwhile
    assert q.remove(taken) == 0  # its late success removes nothing twice
    assert (q.points, q.dropped) == (2, 8)
    q.close()
    assert PointQueue(tmp_path / QUEUE_FILE, 2 * DAY_S).dropped == 8  # the count is kept on disk


def test_a_committed_push_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / QUEUE_FILE
    script = textwrap.dedent(f"""
        import os, signal
        from homemeter.integrations.influxdb.queue import PointQueue
        q = PointQueue({str(path)!r}, 86400.0)
        for t in range(50):
            q.push(t * 10**9, ["m v=%d.0 %d" % (t, t * 10**9)])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    q = PointQueue(path, 86400.0)
    assert q.points == 50
    assert sent(q) == [f"m v={t}.0 {t * S}" for t in range(50)]


def test_a_damaged_file_is_moved_aside_and_a_new_queue_started(tmp_path: Path) -> None:
    path = tmp_path / QUEUE_FILE
    path.write_bytes(b"this is not a database" * 100)
    q = PointQueue(path, DAY_S)
    assert q.points == 0
    q.push(S, lines(1))
    assert q.points == 2
    assert [p.name.startswith(QUEUE_FILE + ".damaged-") for p in tmp_path.iterdir()].count(True) == 1
