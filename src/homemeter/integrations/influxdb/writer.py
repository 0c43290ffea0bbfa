"""The InfluxDB writer component: points from snapshots, through the disk queue, to the server.

Two tasks. The collector takes a snapshot every `frequency` seconds of meter time and commits the
two lines of each channel read since its last point to the queue (`queue.py`), stamped with the
reading time. The sender POSTs what the queue holds: the newest interval first, then the backlog in
reading order in batches of up to 5,000 lines, so live points never wait behind more than one
batch. A failed POST keeps its points and is retried with a capped back-off (or after the server's
`Retry-After`); bad data (400/422) is retried row by row to find the bad row, which is dropped and
reported with the server's reason, so one bad line never blocks the queue; a 413 halves the batch.

Status words are the device's (reference integrations.md 3.5), `statusTime` is the last attempt or
configuration change (epoch s); `backlogPoints` and `backlogOldestAge` (s of meter time) show what
waits on disk. Statistics read the counters `uploads` and `uploadErrors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, TypeVar

import httpx

from homemeter.component import Component, Context, State
from homemeter.config.app import AppConfig
from homemeter.config.influxdb import InfluxDbConfig
from homemeter.errors import ConfigRejected
from homemeter.integrations.influxdb.endpoint import Answer, Target, Verdict, failure, judge, target
from homemeter.integrations.influxdb.line_protocol import fresh_lines
from homemeter.integrations.influxdb.queue import QUEUE_FILE, Batch, PointQueue, QueueError
from homemeter.meter.snapshot import MeterSnapshot
from homemeter.system.issues import Severity
from homemeter.timestamps import duration

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_POINTS = 5000  # lines per POST while catching up (about 1 MB)
BACKOFF_FIRST, BACKOFF_CAP = 1.0, 300.0  # s: 1, 2, 4 ... 300; the device waits 30 s to 1 h
FAILING_AFTER = 3  # consecutive failed attempts before the issue is raised
STOP_GRACE = 5.0  # s a stop or a configuration change waits for the answer to a request in flight
DAY = 86_400.0

CONFIGURATION_UPDATED = "Configuration updated"
SENT = "Data sent successfully"
DISABLED = "Disabled"


def backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` consecutive failures."""
    return min(BACKOFF_FIRST * 2.0 ** (failures - 1), BACKOFF_CAP)


class InfluxDbWriter(Component):
    """Owns the queue (its own thread), the HTTP client and the two tasks; follows `influxdb` config."""

    name = "influxdb"
    issue_codes = MappingProxyType(
        {
            "influxdb_upload_failing": Severity.WARNING,  # the server takes nothing; points queue up
            "influxdb_points_dropped": Severity.WARNING,  # the queue bound dropped the oldest points
            "influxdb_points_rejected": Severity.ERROR,  # the server refused points as bad data
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.config = ctx.config.influxdb
        self._executor: ThreadPoolExecutor | None = None
        self._queue: PointQueue | None = None
        self._client: httpx.AsyncClient | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._written: dict[int, int] = {}  # channel -> reading ms of its last queued point
        self._status, self._status_time = CONFIGURATION_UPDATED, time.time()
        self._failures = 0
        self._batch_points = BATCH_POINTS
        self._isolate_until = 0  # after bad data: backlog rows up to this id go one by one
        self._live_next = True  # live rows and backlog alternate
        self._rewind = False  # the last attempt failed: the next starts with the oldest row

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="influxdb-queue")
        if self.config.enabled or (self.ctx.data_dir / QUEUE_FILE).exists():
            await self._open_queue()
        await self._begin(self.config)

    async def stop(self) -> None:
        await self._end()
        await super().stop()
        if self._executor is not None:
            if self._queue is not None:
                await self._run(self._queue.close)
                self._queue = None
            self._executor.shutdown(wait=True)
            self._executor = None

    async def apply(self, old: AppConfig, new: AppConfig) -> None:
        cfg = new.influxdb
        if cfg == self.config:
            return
        if cfg.enabled:
            target(cfg)  # a CA file that cannot be used is refused (409) before anything changes
        await self._end()
        self.config = cfg
        if self._queue is not None:  # one int, read by the queue thread at its next push
            self._queue.max_age_ns = int(cfg.queueMaxAge * DAY * 1e9)
        self._failures, self._batch_points = 0, BATCH_POINTS
        await self._begin(cfg)

    async def _begin(self, cfg: InfluxDbConfig) -> None:
        if not cfg.enabled:
            self._set_status(DISABLED)
            self.set_state(State.DISABLED)
            return
        self._set_status(CONFIGURATION_UPDATED)
        self.set_state(State.STARTING)
        if self._queue is None and not await self._open_queue():
            return
        try:
            request = target(cfg)
        except ConfigRejected as err:  # at start: the CA file was removed since it was set
            self._set_status(f"Failed to start: {err}")
            self.set_state(State.DEGRADED, str(err))
            return
        self._client = request.client()
        self._stopping = asyncio.Event()
        self._workers = [
            self.spawn(self._collect(cfg), "collect"),
            self.spawn(self._send(request, self._client, self._stopping), "send"),
        ]

    async def _end(self) -> None:
        """Stop collecting now; let a request in flight get its answer (bounded), then stop sending.

        A cancelled request may have been written without us hearing it: it would be sent again.
        """
        workers, self._workers = self._workers, []
        self._stopping.set()
        self._wake.set()
        if workers:
            workers[0].cancel()  # the collector: a push in progress completes on the queue thread
            _, late = await asyncio.wait(workers, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _open_queue(self) -> bool:
        path = self.ctx.data_dir / QUEUE_FILE
        try:
            self._queue = await self._run(PointQueue, path, self.config.queueMaxAge * DAY)
        except QueueError as err:
            log.error("influxdb queue unusable: %s", err)
            self._set_status(f"Failed to open the queue: {err}")
            self.set_state(State.DEGRADED, str(err))
            return False
        if self._queue.points:
            log.info("influxdb backlog points=%d path=%s", self._queue.points, path)
        return True

    async def _run(self, fn: Callable[..., T], *args: Any, done: Callable[[T], None] | None = None) -> T:
        """Run a queue call on the queue's own thread (SQLite commits wait for fsync).

        A cancelled caller does not stop the call: the thread finishes it. `done(result)` runs when it
        does, cancelled or not, so what a push or remove changed is always counted.
        """
        assert self._executor is not None
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        if done is not None:
            future.add_done_callback(lambda f: f.cancelled() or f.exception() or done(f.result()))
        return await asyncio.shield(future)

    # ----------------------------------------------------------------- collecting
    async def _collect(self, cfg: InfluxDbConfig) -> None:
        due = 0.0
        async for snap in self.ctx.meter.snapshots():
            # Window ends are sums of floats: a snapshot a hair before its due time is on time.
            if snap.taken_at < due - 0.001:
                continue
            # Keep the cadence on the grid of `frequency`; after a gap, restart it from now.
            due = (
                due + cfg.frequency if snap.taken_at - due < cfg.frequency else snap.taken_at + cfg.frequency
            )
            await self._queue_snapshot(cfg, snap)

    async def _queue_snapshot(self, cfg: InfluxDbConfig, snap: MeterSnapshot) -> None:
        lines = fresh_lines(cfg.measurement, snap, self.ctx.device_id, self._written)
        if not lines:
            return
        queue = self._queue
        assert queue is not None

        def queued(dropped: int) -> None:
            self.count("pointsQueued", len(lines))
            if dropped:
                self.count("pointsDropped", dropped)
                self.raise_issue(
                    "influxdb_points_dropped",
                    f"The InfluxDB queue reached {cfg.queueMaxAge} days: its {queue.dropped} "
                    "oldest points were dropped",
                )
            self._wake.set()

        try:
            await self._run(queue.push, int(snap.taken_at * 1e9), lines, done=queued)
        except QueueError as err:
            self.count("pointsLost", len(lines))
            self.raise_issue("influxdb_points_dropped", f"InfluxDB points lost: {err}")
            log.error("influxdb points lost count=%d error=%s", len(lines), err)

    # ----------------------------------------------------------------- sending
    async def _send(self, request: Target, client: httpx.AsyncClient, stopping: asyncio.Event) -> None:
        queue = self._queue
        assert queue is not None
        while not stopping.is_set():
            self._wake.clear()
            size = self._batch_points
            backlog = 1 if self._isolate_until else size
            batch = await self._run(queue.take, size, backlog, self._live_next, self._rewind)
            if batch is None:
                await self._wake.wait()
                continue
            if not batch.live and batch.first > self._isolate_until:
                self._isolate_until = 0
            try:
                response = await client.post(request.url, content=batch.body, headers=request.headers)
                answer = judge(response)
            except httpx.TransportError as err:
                answer = failure(err)
            delay = await self._settle(queue, batch, answer)
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)

    async def _settle(self, queue: PointQueue, batch: Batch, answer: Answer) -> float:
        """Act on the answer; the seconds to wait before the next attempt."""
        self.count("uploads" if answer.verdict is Verdict.WRITTEN else "uploadErrors")
        self._live_next, self._rewind = not batch.live, False
        if answer.verdict is Verdict.WRITTEN:
            await self._run(queue.remove, batch, done=lambda gone: self.count("pointsWritten", gone))
            self._succeeded()
            return 0.0
        self._failures += 1
        if answer.verdict is not Verdict.REJECTED or batch.rows > 1:  # not settled: oldest first
            self._live_next, self._rewind = False, True
        reason = f"Failed to send data: HTTP {answer.code} - {answer.text} (Attempt {self._failures})"
        if answer.verdict is Verdict.RETRY:
            delay = answer.retry_after if answer.retry_after is not None else backoff(self._failures)
            self._failed(f"{reason}. Retrying in {duration(delay)}")
            return delay
        if batch.rows > 1:  # find the row at fault: fewer points, or one row at a time
            if answer.verdict is Verdict.TOO_LARGE:
                self._batch_points = max(batch.points // 2, 1)
                self._failed(f"{reason}. Retrying with {self._batch_points} points per request")
            else:
                self._isolate_until = batch.last
                self._failed(f"{reason}. Retrying its {batch.rows} parts one by one")
            return 0.0
        gone = await self._run(queue.remove, batch, done=lambda n: self.count("pointsRejected", n))
        message = f"{reason}. The server refused {gone} points as invalid: not retried"
        self.raise_issue("influxdb_points_rejected", message)
        self._failed(message)
        return 0.0

    def _succeeded(self) -> None:
        if self._failures:
            log.info("influxdb writing again after %d failed attempts", self._failures)
        self._failures = 0
        self._set_status(SENT)
        self.set_state(State.RUNNING)
        self.clear_issue("influxdb_upload_failing")

    def _failed(self, status: str) -> None:
        # WARNING for the first failure of a series, DEBUG for its repeats.
        log.log(logging.WARNING if self._failures == 1 else logging.DEBUG, "influxdb %s", status)
        self._set_status(status)
        self.set_state(State.DEGRADED, status)
        if self._failures >= FAILING_AFTER:
            self.raise_issue("influxdb_upload_failing", status)

    # ----------------------------------------------------------------- status
    def _set_status(self, text: str) -> None:
        self._status, self._status_time = text, time.time()

    def details(self) -> Mapping[str, Any]:
        queue = self._queue
        points = queue.points if queue is not None else 0
        oldest = queue.oldest_ns if queue is not None else None
        age = 0 if oldest is None else max(int(self.ctx.meter.latest.taken_at - oldest / 1e9), 0)
        return {
            "status": self._status,
            "statusTime": self._status_time,
            "backlogPoints": points,
            "backlogOldestAge": age,
            "backlogDropped": queue.dropped if queue is not None else 0,
        }
