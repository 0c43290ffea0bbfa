"""The meter: samples the source at the device cadence, accounts energy, publishes snapshots.

Cadence (reference meter.md 4.1): channel 0 is read every line-cycle window (sample time, default
200 ms); one multiplexed channel is read every second window, because the window spanning a
multiplexer switch is discarded. Multiplexed channels take turns by smooth weighted round robin,
grid and battery channels twice as often (the device's x2 weight).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence

from homemeter.config.channel import ChannelConfig, check_channel_set
from homemeter.config.roles import AGGREGATE_ROLES, Role
from homemeter.errors import SourceUnavailable
from homemeter.meter.accounting import EnergyCounter
from homemeter.meter.clock import MeterClock
from homemeter.meter.reading import ProcessedReading, process, process_remote
from homemeter.meter.snapshot import ChannelReading, EnergyTotals, MeterSnapshot, RoleAggregate
from homemeter.meter.source import PolledSource, SampleSource
from homemeter.meter.view import EnergyListener, LatestStream

log = logging.getLogger(__name__)

DEFAULT_VOLTAGE = 230.0  # what the device reports before its first reading
DEFAULT_FREQUENCY = 50.0
FREQUENCY_RANGE = (45.0, 65.0)
FREQUENCY_ALPHA = 1.0 / 8.0  # the device's EMA weight
MIN_REAL_PERIOD = 0.02  # s: at most 50 snapshots per real second, however fast the simulation runs
MAX_CATCH_UP_WINDOWS = 25  # after a longer stall (suspend, debugger) skip ahead; dt covers the gap
_DOUBLE_WEIGHT = (Role.GRID, Role.BATTERY)


class Meter:
    """Owns the channel state; consumers see it as a `MeterView`, the API as a `MeterControl`."""

    def __init__(
        self,
        source: SampleSource,
        channels: Sequence[ChannelConfig],
        energies: Mapping[int, EnergyTotals],
        *,
        clock: MeterClock,
        sample_time_ms: int = 200,
    ) -> None:
        check_channel_set(channels, len(channels))
        self._source = source
        # Remote meters are taken from (every channel, every window), not sampled: see `_take`.
        self._polled = source if isinstance(source, PolledSource) else None
        self._clock = clock
        self._configs = list(channels)
        n = len(channels)
        self._energy = [EnergyCounter.from_totals(energies.get(i, EnergyTotals())) for i in range(n)]
        self._values: list[ProcessedReading | None] = [None] * n
        self._read_at_ms: list[int | None] = [None] * n
        self._started = clock.now()
        # Energy starts counting now: the time the service was down was not measured.
        self._last_read: list[float] = [self._started] * n
        self._window_s = sample_time_ms / 1000.0
        self._next_window = self._started + self._window_s
        self._window_index = 0
        self._swrr = [0.0] * n
        self._weights = self._mux_weights()
        self._mux_channel: int | None = None
        self._voltage = DEFAULT_VOLTAGE
        self._frequency: float | None = None
        self._raw_frequency = DEFAULT_FREQUENCY
        self.readings = 0
        self.failures = 0
        self.late_windows = 0
        self.skipped_windows = 0
        self._seq = 0
        self._energy_listeners: list[EnergyListener] = []
        self._mux_channel = self._pick_mux_channel() if self._polled is None else None
        self._stream = LatestStream(self._build_snapshot(self._started))

    # ----------------------------------------------------------------- reading
    @property
    def channel_count(self) -> int:
        return len(self._configs)

    @property
    def channels(self) -> tuple[ChannelConfig, ...]:
        return tuple(self._configs)

    @property
    def sample_time_ms(self) -> int:
        return round(self._window_s * 1000)

    @property
    def clock(self) -> MeterClock:
        return self._clock

    def step(self, at: float) -> None:
        """Process the line-cycle window that ends at `at` (epoch seconds on the meter clock)."""
        self._source.advance(at)
        if self._polled is not None:
            for index in range(len(self._configs)):
                self._take(self._polled, index, at)
            return
        if self._window_index % 2 == 0:
            mux = self._mux_channel
            if mux is not None and self._configs[mux].active:
                self._read(mux, at)
            self._mux_channel = self._pick_mux_channel()
        self._read(0, at)
        self._window_index += 1

    def _read(self, index: int, at: float) -> None:
        try:
            measurement = self._source.measure(index, at)
        except SourceUnavailable as err:
            # Discarded: the last-read time stays, so the next good reading covers the gap.
            self.failures += 1
            log.debug("read failed channel=%d error=%s", index, err)
            return
        reading = process(measurement, self._configs[index])
        if reading is None:
            self.failures += 1
            return
        self.readings += 1
        self._energy[index].add(reading, at - self._last_read[index])
        self._last_read[index] = at
        self._values[index] = reading
        self._read_at_ms[index] = int(at * 1000)
        if index == 0:
            self._voltage = measurement.voltage
            self._update_frequency(at)

    def _take(self, source: PolledSource, index: int, at: float) -> None:
        """A remote meter's newest reading, taken for every channel so nothing piles up unseen."""
        try:
            got = source.take(index)
        except SourceUnavailable:
            # No values (never zeros that read as "nothing consumed"); its meter keeps counting, so
            # the energy of the gap arrives with the first reading after it.
            self._values[index] = None
            self._read_at_ms[index] = None
            return
        cfg = self._configs[index]
        if got is None or not cfg.active:
            return
        reading = process_remote(got.measurement, got.power_factor, cfg)
        if reading is None:
            self.failures += 1
            return
        self.readings += 1
        self._energy[index].credit(got.energy, swap=cfg.reverse)
        self._last_read[index] = at
        self._values[index] = reading
        self._read_at_ms[index] = int(at * 1000)
        if index == 0:
            self._voltage = got.measurement.voltage
            self._update_frequency(at)

    def _update_frequency(self, at: float) -> None:
        f = self._source.grid_frequency(at)
        if not FREQUENCY_RANGE[0] <= f <= FREQUENCY_RANGE[1]:
            return
        self._raw_frequency = f
        ema = self._frequency
        self._frequency = f if ema is None else ema + (f - ema) * FREQUENCY_ALPHA

    def _mux_weights(self) -> list[tuple[int, float]]:
        """(channel, weight) of the active multiplexed channels; rebuilt only on a config change."""
        return [
            (i, 2.0 if cfg.role in _DOUBLE_WEIGHT else 1.0)
            for i, cfg in enumerate(self._configs)
            if i > 0 and cfg.active
        ]

    def _pick_mux_channel(self) -> int | None:
        """Smooth weighted round robin over the active multiplexed channels."""
        # Runs every second window: the weights are precomputed (halves its cost per simulated day).
        best: int | None = None
        best_value = 0.0
        total = 0.0
        swrr = self._swrr
        for i, weight in self._weights:
            value = swrr[i] + weight
            swrr[i] = value
            total += weight
            if best is None or value > best_value:
                best, best_value = i, value
        if best is not None:
            swrr[best] -= total
            # Before the window starts: a hardware source switches its multiplexer now.
            self._source.select(best)
        return best

    # ----------------------------------------------------------------- publishing
    def _build_snapshot(self, at: float) -> MeterSnapshot:
        voltage = self._voltage
        channels = tuple(self._channel_reading(i, voltage) for i in range(len(self._configs)))
        self._seq += 1
        return MeterSnapshot(
            seq=self._seq,
            taken_at=at,
            uptime_ms=int((at - self._started) * 1000),
            voltage=voltage,
            grid_frequency=self._frequency if self._frequency is not None else self._raw_frequency,
            channels=channels,
            aggregates=tuple(RoleAggregate.of(role, channels) for role in AGGREGATE_ROLES),
            readings=self.readings,
            failures=self.failures,
            late_windows=self.late_windows,
            skipped_windows=self.skipped_windows,
        )

    def _channel_reading(self, i: int, line_voltage: float) -> ChannelReading:
        cfg = self._configs[i]
        r = self._values[i] if cfg.active else None
        e = self._energy[i]
        return ChannelReading(
            index=i,
            label=cfg.label,
            phase=cfg.phase,
            group_label=cfg.groupLabel,
            role=cfg.role,
            active=cfg.active,
            voltage=r.voltage if r else line_voltage,
            current=r.current if r else 0.0,
            active_power=r.active_power if r else 0.0,
            apparent_power=r.apparent_power if r else 0.0,
            reactive_power=r.reactive_power if r else 0.0,
            power_factor=r.power_factor if r else 0.0,
            active_energy_imported=e.active_imported,
            active_energy_exported=e.active_exported,
            reactive_energy_imported=e.reactive_imported,
            reactive_energy_exported=e.reactive_exported,
            apparent_energy=e.apparent,
            last_reading_ms=self._read_at_ms[i] if cfg.active else None,
        )

    def _now(self) -> float:
        """Meter time: the end of the last processed window (the clock may run ahead of it)."""
        return self._next_window - self._window_s

    @property
    def latest(self) -> MeterSnapshot:
        return self._stream.latest

    def publish(self, at: float | None = None) -> MeterSnapshot:
        """Build a new snapshot now and wake every consumer waiting in `snapshots()`."""
        return self._stream.publish(self._build_snapshot(self._now() if at is None else at))

    def snapshots(self) -> AsyncIterator[MeterSnapshot]:
        """Latest-only stream: a slow consumer skips snapshots, it never stalls sampling."""
        return self._stream.snapshots()

    async def run(self) -> None:
        """Sample in (simulated) real time until cancelled."""
        clock = self._clock
        # The first round catches up the start-up (components starting): not a hold-up to count.
        counting = False
        while True:
            now = clock.now()
            behind = int((now - self._next_window) / self._window_s)
            if behind > MAX_CATCH_UP_WINDOWS * max(1.0, clock.speed):
                log.warning("meter stalled, skipping windows=%d", behind)
                self._next_window += behind * self._window_s
                self.skipped_windows += behind
            due = self._next_window <= now
            if due and counting:
                self._count_late(now)
            counting = True
            if due and self._source.blocking:
                await asyncio.to_thread(self._catch_up, now)  # SPI/GPIO reads block: off the loop
            elif due:
                self._catch_up(now)
            if due:
                self.publish()
            wait = clock.real_seconds(self._next_window - clock.now())
            floor = MIN_REAL_PERIOD if clock.speed > 1 else 0.0
            await asyncio.sleep(max(wait, floor))

    def _count_late(self, now: float) -> None:
        """Count the due windows that ended over one window ago: the loop was held up that long.

        Under --speed the loop wakes at most every MIN_REAL_PERIOD (several windows at once), so
        that much meter time is on time too.
        """
        speed = self._clock.speed
        cutoff = now - self._window_s - (MIN_REAL_PERIOD * speed if speed > 1 else 0.0)
        if self._next_window <= cutoff:
            self.late_windows += int((cutoff - self._next_window) / self._window_s) + 1

    def _catch_up(self, now: float) -> None:
        while self._next_window <= now:
            self.step(self._next_window)
            self._next_window += self._window_s

    def simulate(self, seconds: float) -> None:
        """Run `seconds` of meter time as fast as possible (benchmarks, tests); then publish."""
        end = self._next_window + seconds
        while self._next_window < end:
            self.step(self._next_window)
            self._next_window += self._window_s
        self.publish()

    # ----------------------------------------------------------------- commands
    def on_energy_change(self, listener: EnergyListener) -> None:
        """`listener` is awaited after every change of energy totals made by a command."""
        self._energy_listeners.append(listener)

    async def _announce(self) -> None:
        self.publish()
        for listener in self._energy_listeners:
            await listener()

    async def apply_channel(self, cfg: ChannelConfig) -> None:
        """A new configuration for one channel, live. A role change resets its energy (as the device)."""
        i = cfg.index
        old = self._configs[i]
        self._configs[i] = cfg
        if cfg.active and not old.active:
            self._last_read[i] = self._now()
            self._values[i] = None
            self._read_at_ms[i] = None
        if not cfg.active:
            self._swrr[i] = 0.0
        self._weights = self._mux_weights()
        if cfg.role is not old.role:
            self._energy[i] = EnergyCounter()
            await self._announce()
        else:
            self.publish()

    async def reset_energy(self, index: int | None = None) -> None:
        """Zero one channel's counters, or all of them."""
        targets = range(len(self._energy)) if index is None else (index,)
        for i in targets:
            self._energy[i] = EnergyCounter()
        await self._announce()

    async def set_energy(self, index: int, totals: EnergyTotals) -> None:
        self._energy[index] = EnergyCounter.from_totals(totals)
        await self._announce()

    def set_sample_time(self, sample_time_ms: int) -> None:
        self._window_s = sample_time_ms / 1000.0
