"""The built-in household simulator: a plausible house, so homemeter runs without hardware.

Everything derives from `seed`: appliance schedules from a `random.Random` per (seed, day, channel),
clouds, voltage and frequency from seeded value noise on an epoch-aligned grid. So the house looks
the same whenever the simulation started; only the battery's charge depends on history.

Speed: the meter calls `advance` every 200 ms and `measure` ~1.5 times per window, 432,000 windows
per simulated day. State only changes at boundaries (an appliance event, a 10 s PV/cloud step, local
midnight, the battery reaching a SoC limit); between them `advance` is one comparison and `measure`
a cached lookup plus table noise. Measured (CPython 3.11, meter cadence over a simulated day):
about 0.3 µs per `advance` and 1.3 µs per `measure`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from operator import itemgetter
from random import Random

from homemeter.config.channel import MAX_CHANNELS, ChannelConfig
from homemeter.config.roles import Role
from homemeter.meter.source import Measurement
from homemeter.meter.sources.house import (
    CIRCUITS,
    DAY,
    HOUR,
    Circuit,
    Day,
    Schedule,
    check_channel_count,
    default_channel_configs,
)

__all__ = ["HouseholdSimulator", "default_channel_configs"]

STEP_S = 10.0  # PV, clouds, voltage and frequency change in 10 s steps
# A backfill (`power_levels`) steps PV and clouds every 60 s instead: 3.4x faster (a year of 17
# channels ~20 s instead of ~70 s here) for 0.05 % less PV energy over a June month.
LEVELS_STEP_S = 60.0
YEAR_DAYS = 365.2422

# The site: longitude comes from the caller; latitude and the array are fixed (central Europe).
LATITUDE_DEG = 48.0
PANEL_TILT_DEG = 30.0  # facing the equator
PV_PEAK_W = 6_000.0  # kWp of the array
PV_PERFORMANCE = 0.88  # wiring, temperature and inverter losses
INVERTER_MAX_W = 6_000.0
DIFFUSE_FRACTION = 0.1  # of the beam irradiance, reaching the panel from the rest of the sky
CLOUD_DEPTH = 0.7  # a thick cloud cuts this much; diffuse light remains

BATTERY_CAPACITY_WH = 10_000.0
BATTERY_MAX_W = 5_000.0
SOC_MIN, SOC_MAX = 0.10, 0.95
SOC_INITIAL = 0.5
BATTERY_EFFICIENCY = 0.95  # each way
# Home batteries aim slightly above zero grid power so they never charge from the grid by mistake.
BATTERY_GRID_BIAS_W = 20.0

NOMINAL_VOLTAGE = 230.0
VOLTAGE_RISE_PER_W_EXPORT = 0.5e-3  # V/W: a rooftop export raises the local voltage
VOLTAGE_DROP_PER_W_IMPORT = 0.25e-3
NOMINAL_FREQUENCY = 50.0

POWER_NOISE = 0.002  # relative, uniform: CT and ADC measurement noise
VOLTAGE_NOISE = 0.0005
FREQUENCY_NOISE_HZ = 0.004
_NOISE_SIZE = 4096
_NOISE_MASK = _NOISE_SIZE - 1
_TABLE = range(_NOISE_SIZE)
_HASH = 2654435761  # Knuth's multiplicative hash: spreads window timestamps over the noise tables
_SOC_EPS = 1e-9

_SIN_LAT = math.sin(math.radians(LATITUDE_DEG))
_COS_LAT = math.cos(math.radians(LATITUDE_DEG))
_SIN_LAT_TILT = math.sin(math.radians(LATITUDE_DEG - PANEL_TILT_DEG))
_COS_LAT_TILT = math.cos(math.radians(LATITUDE_DEG - PANEL_TILT_DEG))
_DIFFUSE_VIEW = (1.0 + math.cos(math.radians(PANEL_TILT_DEG))) / 2.0

Event = tuple[float, int, float, float]  # (epoch s, channel, W, VAr): the circuit's new level


def clear_sky_pv(t: float, longitude_deg: float) -> float:
    """AC power (W) of the array under a clear sky at epoch `t` (solar time from the longitude)."""
    gamma = 2.0 * math.pi * ((t / DAY) % YEAR_DAYS) / YEAR_DAYS
    # Spencer (1971): declination (rad) and equation of time (min) from the year angle.
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    eot = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    solar_hours = (t % DAY) / HOUR + longitude_deg / 15.0 + eot / 60.0
    cos_hour_angle = math.cos(math.radians(15.0 * (solar_hours - 12.0)))
    sin_d, cos_d = math.sin(decl), math.cos(decl)
    sin_elevation = _SIN_LAT * sin_d + _COS_LAT * cos_d * cos_hour_angle
    if sin_elevation <= 0.0:
        return 0.0
    cos_incidence = _SIN_LAT_TILT * sin_d + _COS_LAT_TILT * cos_d * cos_hour_angle
    elevation_deg = math.degrees(math.asin(sin_elevation))
    # Kasten-Young air mass; Meinel beam irradiance in kW/m².
    air_mass = 1.0 / (sin_elevation + 0.50572 * math.pow(elevation_deg + 6.07995, -1.6364))
    beam = 1.353 * math.pow(0.7, math.pow(air_mass, 0.678))
    plane = beam * max(cos_incidence, 0.0) + DIFFUSE_FRACTION * beam * _DIFFUSE_VIEW
    return min(PV_PEAK_W * PV_PERFORMANCE * plane, INVERTER_MAX_W)


class _ValueNoise:
    """Smooth seeded noise in [-1, 1]: random knots every `spacing` s, cosine-interpolated.

    Knots sit on an epoch-aligned grid and come in seeded blocks, so the value at a time does not
    depend on when the simulation started.
    """

    _BLOCK = 256

    def __init__(self, seed: int, stream: str, spacing: float) -> None:
        self._name = f"homemeter:{seed}:{stream}"
        self._spacing = spacing
        self._blocks: dict[int, list[float]] = {}

    def __call__(self, t: float) -> float:
        x = t / self._spacing
        k = math.floor(x)
        a, b = self._knot(k), self._knot(k + 1)
        return a + (b - a) * (0.5 - 0.5 * math.cos(math.pi * (x - k)))

    def _knot(self, k: int) -> float:
        block, i = divmod(k, self._BLOCK)
        values = self._blocks.get(block)
        if values is None:
            if len(self._blocks) >= 4:
                self._blocks.clear()
            rng = Random(f"{self._name}:{block}")
            values = [rng.uniform(-1.0, 1.0) for _ in range(self._BLOCK)]
            self._blocks[block] = values
        return values[i]


def _heating(day: int) -> float:
    """0 in mid-July .. 1 in mid-January (days since 1970-01-01, which was January 1)."""
    return 0.5 + 0.5 * math.cos(2.0 * math.pi * ((day % YEAR_DAYS) - 15.0) / YEAR_DAYS)


def _summer(indices: tuple[int, ...]) -> Callable[[list[float]], float]:
    """`sum(values[i] for i in indices)` in the same order, without a generator per call: it runs
    twice per simulator boundary (~9,000 a simulated day), a fifth of a backfill's time with one."""
    if not indices:
        return lambda values: 0.0
    get = itemgetter(*indices)
    if len(indices) == 1:
        return lambda values: float(get(values))
    return lambda values: sum(get(values))


def _channel_with(circuits: tuple[Circuit, ...], role: Role) -> int | None:
    return next((c.channel for c in circuits if c.role is role), None)


class HouseholdSimulator:
    """A `SampleSource` measuring the default house (`house.CIRCUITS`) at any epoch time.

    Circuits on channels >= `channel_count` do not exist at all, so channel 0 always equals the
    balance of the measured branches. Spare channels read zero current at line voltage.
    """

    blocking = False  # pure computation, microseconds per window

    def __init__(self, seed: int = 0, channel_count: int = MAX_CHANNELS, longitude_deg: float = 10.0) -> None:
        check_channel_count(channel_count)
        self._seed = seed
        self._n = channel_count
        self._longitude = longitude_deg
        # The household lives by the civil clock of its nominal time zone (no daylight saving).
        self._utc_offset = round(longitude_deg / 15.0) * HOUR
        circuits = tuple(c for c in CIRCUITS if c.channel < channel_count)
        self._schedules: tuple[tuple[int, Schedule], ...] = tuple(
            (c.channel, c.schedule) for c in circuits if c.schedule is not None
        )
        self._loads = tuple(c.channel for c in circuits if c.role is Role.LOAD)
        self._load_sum = _summer(self._loads)
        self._grid = _channel_with(circuits, Role.GRID)
        self._pv = _channel_with(circuits, Role.PV)
        self._battery = _channel_with(circuits, Role.BATTERY)
        self._source_sum = _summer(tuple(c for c in (self._pv, self._battery) if c is not None))

        noise = Random(f"homemeter:{seed}:noise")
        self._power_noise = [1.0 + noise.uniform(-1.0, 1.0) * POWER_NOISE for _ in _TABLE]
        self._voltage_noise = [1.0 + noise.uniform(-1.0, 1.0) * VOLTAGE_NOISE for _ in _TABLE]
        self._frequency_noise = [noise.uniform(-1.0, 1.0) * FREQUENCY_NOISE_HZ for _ in _TABLE]
        self._clouds_fast = _ValueNoise(seed, "clouds", 150.0)
        self._clouds_slow = _ValueNoise(seed, "cloud-banks", 1_800.0)
        self._voltage_wander = _ValueNoise(seed, "voltage", 900.0)
        self._frequency_slow = _ValueNoise(seed, "frequency", 600.0)
        self._frequency_fast = _ValueNoise(seed, "frequency-fast", 60.0)
        self._weather_day = -1
        self._cloudiness = 0.0

        self._p = [0.0] * channel_count
        self._q = [0.0] * channel_count
        self._events: list[Event] = []
        self._next_event = 0  # index into _events
        self._day = 0
        self._next_boundary = -math.inf  # -inf: not started, the first call sets the clock
        self._next_event_t = math.inf
        self._next_day_t = math.inf
        self._step_index = 0
        self._next_step_t = math.inf
        self._soc = SOC_INITIAL
        self._soc_t = 0.0
        self._soc_rate = 0.0  # fraction per second
        self._soc_limit_t = math.inf
        self._voltage_base = NOMINAL_VOLTAGE
        self._voltage = NOMINAL_VOLTAGE
        self._frequency = NOMINAL_FREQUENCY
        self._cache: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * channel_count
        self._levels_only = False  # set by power_levels: voltage, frequency and noise are skipped
        self._step_s = STEP_S

    # ------------------------------------------------------------------ SampleSource
    def factory_channels(self, count: int) -> tuple[ChannelConfig, ...]:
        return tuple(default_channel_configs(count))

    def select(self, channel: int) -> None:
        """No multiplexer to switch: every channel can be computed at any time."""

    def advance(self, at: float) -> None:
        """Move to `at`; a time earlier than the current state is ignored."""
        if at >= self._next_boundary:
            self._catch_up(at)

    def measure(self, channel: int, at: float) -> Measurement:
        """The state at `at` (advancing if needed) with measurement noise that depends on `at`."""
        if not 0 <= channel < self._n:
            raise ValueError(f"channel {channel} out of range 0..{self._n - 1}")
        if at >= self._next_boundary:
            self._catch_up(at)
        p, q, s = self._cache[channel]
        h = ((int(at * 1000.0) * _HASH) & 0xFFFFFFFF) >> 20
        k = self._power_noise[(h + 331 * channel) & _NOISE_MASK]
        v = self._voltage * self._voltage_noise[h]
        s *= k
        return Measurement(v, s / v, p * k, q * k, s)

    def grid_frequency(self, at: float) -> float:
        if at >= self._next_boundary:
            self._catch_up(at)
        h = ((int(at * 1000.0) * _HASH) & 0xFFFFFFFF) >> 20
        return self._frequency + self._frequency_noise[h]

    # ------------------------------------------------------------------ extras for tests and UI
    def power_levels(self, start: float, end: float) -> Iterator[tuple[float, list[float], list[float]]]:
        """Noiseless (P W, Q VAr) per channel over [start, end), as steps: the fast path of a backfill.

        Yields `(t, p, q)` at `start` and whenever a level may change (an appliance event, a 10 s PV
        step, a battery limit); the levels hold until the next yield. `p` and `q` are this
        simulator's own lists, valid until the next iteration. Integrating these steps instead of
        sampling every 200 ms window makes a simulated year ~20 s instead of ~20 min; the instance
        then serves levels only (no voltage, frequency or measurement noise), with PV and clouds
        in LEVELS_STEP_S steps.
        """
        self._levels_only = True
        self._step_s = LEVELS_STEP_S
        self.advance(start)
        t = start
        while t < end:
            yield t, self._p, self._q
            t = self._next_boundary
            if t < end:
                self._catch_up(t)

    @property
    def channel_count(self) -> int:
        return self._n

    def state_of_charge(self, at: float) -> float:
        """Battery charge as a fraction of capacity at `at` (advancing if needed)."""
        self.advance(at)
        soc = self._soc + self._soc_rate * (max(at, self._soc_t) - self._soc_t)
        return min(max(soc, SOC_MIN), SOC_MAX)

    # ------------------------------------------------------------------ state machine
    def _catch_up(self, at: float) -> None:
        if self._next_boundary == -math.inf:
            self._start(at)
        while True:
            boundary = self._boundary()
            if boundary > at:
                break
            self._cross(boundary)
        self._next_boundary = boundary
        self._rebuild_cache()

    def _boundary(self) -> float:
        return min(self._next_event_t, self._next_step_t, self._next_day_t, self._soc_limit_t)

    def _start(self, at: float) -> None:
        """State at the first call: yesterday's and today's schedules replayed up to `at`."""
        day = math.floor((at + self._utc_offset) / DAY)
        self._day = day
        self._events = sorted(self._day_events(day - 1) + self._day_events(day), key=lambda e: e[0])
        self._next_event = 0
        self._next_event_t = self._events[0][0] if self._events else math.inf
        self._apply_events(at)
        self._next_day_t = self._midnight(day + 1)
        self._step_index = math.floor(at / self._step_s)
        self._step(self._step_index * self._step_s)
        self._next_step_t = (self._step_index + 1) * self._step_s
        self._soc_t = at
        self._dispatch_battery()

    def _cross(self, boundary: float) -> None:
        self._soc += self._soc_rate * (boundary - self._soc_t)
        self._soc_t = boundary
        if self._next_day_t <= boundary:  # first, so the new day's midnight events are queued
            self._load_day(self._day + 1)
        self._apply_events(boundary)
        if self._next_step_t <= boundary:
            self._step_index += 1
            self._step(boundary)
            self._next_step_t = (self._step_index + 1) * self._step_s
        if self._soc_limit_t <= boundary:  # snap, so float residue cannot make a zero-length step
            self._soc = SOC_MAX if self._soc_rate > 0.0 else SOC_MIN
        self._dispatch_battery()

    def _midnight(self, day: int) -> float:
        return day * DAY - self._utc_offset

    def _day_events(self, day: int) -> list[Event]:
        info = Day(index=day, weekday=(day + 3) % 7, heating=_heating(day))  # 1970-01-01: Thursday
        midnight = self._midnight(day)
        events: list[Event] = []
        for channel, schedule in self._schedules:
            segments = schedule(Random(f"homemeter:{self._seed}:{channel}:{day}"), info)
            for i, seg in enumerate(segments):
                events.append((midnight + seg.start, channel, seg.active, seg.reactive))
                if i + 1 == len(segments) or segments[i + 1].start != seg.end:
                    events.append((midnight + seg.end, channel, 0.0, 0.0))
        return events

    def _load_day(self, day: int) -> None:
        # Stable sort: yesterday's tail (an EV session ending) stays before today's events at a tie.
        pending = self._events[self._next_event :] + self._day_events(day)
        self._events = sorted(pending, key=lambda e: e[0])
        self._next_event = 0
        self._next_event_t = self._events[0][0] if self._events else math.inf
        self._day = day
        self._next_day_t = self._midnight(day + 1)

    def _apply_events(self, until: float) -> None:
        events, i = self._events, self._next_event
        while i < len(events) and events[i][0] <= until:
            _, channel, p, q = events[i]
            self._p[channel] = p
            self._q[channel] = q
            i += 1
        self._next_event = i
        self._next_event_t = events[i][0] if i < len(events) else math.inf

    def _step(self, t: float) -> None:
        """PV, voltage and frequency for the 10 s step starting at `t`."""
        if self._pv is not None:
            clear = clear_sky_pv(t, self._longitude)
            self._p[self._pv] = clear * (1.0 - CLOUD_DEPTH * self._cloud_cover(t)) if clear else 0.0
        if self._levels_only:
            return
        local_hours = ((t + self._utc_offset) % DAY) / HOUR
        # Distribution voltage: higher in the quiet night, wandering a few volts.
        self._voltage_base = (
            NOMINAL_VOLTAGE
            + 2.5 * self._voltage_wander(t)
            + 1.2 * math.cos(2.0 * math.pi * (local_hours - 3.0) / 24.0)
        )
        # Slow seeded wander within +-0.045 Hz; the per-read noise keeps it inside +-0.05 Hz.
        wander = 0.03 * self._frequency_slow(t) + 0.015 * self._frequency_fast(t)
        self._frequency = NOMINAL_FREQUENCY + wander

    def _cloud_cover(self, t: float) -> float:
        """0 clear .. 1 under a cloud; the day's cloudiness sets how often clouds pass."""
        day = math.floor((t + self._utc_offset) / DAY)
        if day != self._weather_day:
            rng = Random(f"homemeter:{self._seed}:weather:{day}")
            kind = rng.random()
            if kind < 0.35:
                self._cloudiness = rng.uniform(0.0, 0.1)
            elif kind < 0.7:
                self._cloudiness = rng.uniform(0.15, 0.45)
            else:
                self._cloudiness = rng.uniform(0.5, 0.85)
            self._weather_day = day
        texture = 0.5 + 0.5 * (0.7 * self._clouds_fast(t) + 0.3 * self._clouds_slow(t))
        return min(max((self._cloudiness - texture) / 0.1 + 0.5, 0.0), 1.0)

    def _dispatch_battery(self) -> None:
        """Cover the house deficit from the battery, store the PV surplus, within SoC limits."""
        bat = self._battery
        if bat is None:
            return
        pv = self._p[self._pv] if self._pv is not None else 0.0
        deficit = self._load_sum(self._p) - pv
        power = 0.0
        if deficit >= 0.0 and self._soc > SOC_MIN + _SOC_EPS:
            power = min(max(deficit - BATTERY_GRID_BIAS_W, 0.0), BATTERY_MAX_W)
        elif deficit < 0.0 and self._soc < SOC_MAX - _SOC_EPS:
            power = max(deficit, -BATTERY_MAX_W)
        self._p[bat] = power
        capacity_ws = BATTERY_CAPACITY_WH * HOUR
        if power > 0.0:
            self._soc_rate = -power / BATTERY_EFFICIENCY / capacity_ws
            self._soc_limit_t = self._soc_t + (SOC_MIN - self._soc) / self._soc_rate
        elif power < 0.0:
            self._soc_rate = -power * BATTERY_EFFICIENCY / capacity_ws
            self._soc_limit_t = self._soc_t + (SOC_MAX - self._soc) / self._soc_rate
        else:
            self._soc_rate = 0.0
            self._soc_limit_t = math.inf

    def _rebuild_cache(self) -> None:
        p, q = self._p, self._q
        voltage = self._voltage_base
        if self._grid is not None:
            grid_p = self._load_sum(p) - self._source_sum(p)
            grid_q = self._load_sum(q) - self._source_sum(q)
            p[self._grid], q[self._grid] = grid_p, grid_q
            if self._levels_only:
                return
            if grid_p >= 0.0:
                voltage -= VOLTAGE_DROP_PER_W_IMPORT * grid_p
            else:
                voltage -= VOLTAGE_RISE_PER_W_EXPORT * grid_p
        self._voltage = voltage
        self._cache = [(p[i], q[i], math.hypot(p[i], q[i])) for i in range(self._n)]
