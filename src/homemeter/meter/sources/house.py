"""The simulated house: its wiring (one table) and what each circuit's appliances do on a given day.

A schedule is a pure function of a `random.Random` seeded per (seed, day, channel) and the day's
calendar facts, so a day looks the same whenever the simulation started, and a circuit's schedule
does not change when another circuit is left out. The simulator turns them into level-change events.
Times in a schedule are seconds after local civil midnight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import NamedTuple

from homemeter.config.channel import MAX_CHANNELS, ChannelConfig, CtSpecification
from homemeter.config.roles import Role

MINUTE = 60.0
HOUR = 3_600.0
DAY = 86_400.0
# Long programs started in the evening (EV, dishwasher) may run past midnight; nothing else does,
# so the next day's first event never meets the previous day's tail on the same circuit.
OVERNIGHT_LIMIT = DAY + 12 * HOUR


class Segment(NamedTuple):
    """A circuit drawing `active` W and `reactive` VAr (+ inductive) from `start` to `end` (s)."""

    start: float
    end: float
    active: float
    reactive: float


@dataclass(frozen=True, slots=True)
class Day:
    """The calendar facts an appliance schedule may depend on."""

    index: int  # days since 1970-01-01 in local civil time
    weekday: int  # 0 Monday .. 6 Sunday
    heating: float  # 0 midsummer .. 1 midwinter: heat pump demand, how early evenings get dark

    @property
    def weekend(self) -> bool:
        return self.weekday >= 5


Schedule = Callable[[Random, Day], list[Segment]]


@dataclass(frozen=True, slots=True)
class Circuit:
    """One wired channel of the default house; no `schedule` for grid, PV and battery."""

    channel: int
    label: str
    group_label: str
    role: Role
    current_rating: float = 30.0
    schedule: Schedule | None = None


def reactive(active: float, pf: float) -> float:
    """Reactive power for a power factor: pf > 0 lagging (inductive, +Q), pf < 0 leading (-Q)."""
    return math.copysign(active * math.tan(math.acos(min(abs(pf), 1.0))), pf)


class _Timeline:
    """Collects one circuit's segments in time order; overlaps are pushed later, never stacked.

    With a base load the gaps are filled with it, so the circuit never reads zero.
    """

    def __init__(self, base: float = 0.0, base_pf: float = 1.0, limit: float = DAY) -> None:
        self._segments: list[Segment] = []
        self._end = 0.0
        self._limit = limit
        self._base = (base, reactive(base, base_pf))

    def add(self, start: float, end: float, active: float, pf: float = 1.0, extra_q: float = 0.0) -> float:
        """Append a segment (shifted to after the previous one); returns where it ends."""
        start = max(start, self._end)
        end = min(max(end, start), self._limit)
        if end > start:
            self._segments.append(Segment(start, end, active, reactive(active, pf) + extra_q))
            self._end = end
        return end

    @property
    def end(self) -> float:
        return self._end

    def segments(self) -> list[Segment]:
        base_p, base_q = self._base
        if base_p == 0.0:
            return self._segments
        filled: list[Segment] = []
        t = 0.0
        for seg in self._segments:
            if seg.start > t:
                filled.append(Segment(t, seg.start, base_p, base_q))
            filled.append(seg)
            t = seg.end
        if t < DAY:
            filled.append(Segment(t, DAY, base_p, base_q))
        return filled


def _fridge(rng: Random, day: Day) -> list[Segment]:
    # Compressor: ~20 min on, ~40 min off, all day; a phase offset so days do not line up.
    tl = _Timeline()
    t = -rng.uniform(0.0, HOUR)
    while t < DAY:
        on = rng.uniform(17, 23) * MINUTE
        tl.add(t, t + on, rng.uniform(85, 115), pf=0.85)
        t += on + rng.uniform(35, 45) * MINUTE
    return tl.segments()


# Relative heating demand by hour: nights are cold, mornings reheat after the night setback.
_HEAT_PUMP_HOURLY = (0.8,) * 5 + (1.0,) * 4 + (0.45,) * 7 + (0.65,) * 6 + (0.75,) * 2


def _heat_pump(rng: Random, day: Day) -> list[Segment]:
    tl = _Timeline()
    hot_water = rng.uniform(5.5, 7.0) * HOUR  # daily hot-water cycle, also in summer
    t = rng.uniform(0.0, 20.0) * MINUTE
    while t < DAY:
        if t >= hot_water:
            t = tl.add(t, t + rng.uniform(25, 40) * MINUTE, rng.uniform(1800, 2300), pf=0.88)
            hot_water = math.inf
        demand = day.heating * _HEAT_PUMP_HOURLY[int(t // HOUR) % 24]
        if rng.random() < 0.03 + 0.75 * demand:
            watts = 1000.0 + 1500.0 * demand * rng.uniform(0.7, 1.0)
            t = tl.add(t, t + rng.uniform(20, 45) * MINUTE, watts, pf=rng.uniform(0.82, 0.9))
        t += rng.uniform(15, 40) * MINUTE
    return tl.segments()


def _bake(tl: _Timeline, rng: Random, start: float) -> None:
    # Resistive element (PF 1) under thermostat control; the convection fan (a motor) keeps running.
    element = rng.uniform(2000, 3000)
    fan = 25.0
    fan_q = reactive(fan, 0.8)
    t = tl.add(start, start + rng.uniform(10, 15) * MINUTE, element + fan, extra_q=fan_q)
    done = t + rng.uniform(30, 60) * MINUTE
    while t < done:
        t = tl.add(t, t + rng.uniform(2, 5) * MINUTE, fan, pf=0.8)
        t = tl.add(t, t + rng.uniform(1.5, 4) * MINUTE, element + fan, extra_q=fan_q)


def _oven(rng: Random, day: Day) -> list[Segment]:
    tl = _Timeline()
    if day.weekend and rng.random() < 0.4:
        _bake(tl, rng, rng.uniform(11.0, 12.25) * HOUR)
    if rng.random() < 0.8:
        _bake(tl, rng, rng.uniform(17.25, 18.75) * HOUR)
    return tl.segments()


# Kitchen appliances: (watts range, minutes range, power factor).
_KETTLE = ((1800.0, 2200.0), (2.5, 4.0), 1.0)
_MICROWAVE = ((1100.0, 1300.0), (1.0, 6.0), 0.92)
_TOASTER = ((800.0, 950.0), (2.0, 4.0), 1.0)
_COFFEE = ((1200.0, 1450.0), (0.7, 1.5), 1.0)
_KITCHEN_BURSTS = (  # (from h, to h, (min, max) count, appliances to choose from)
    (6.25, 8.5, (1, 3), (_KETTLE, _TOASTER, _COFFEE)),
    (11.5, 13.5, (0, 1), (_MICROWAVE, _KETTLE)),
    (15.0, 16.5, (0, 1), (_KETTLE, _COFFEE)),
    (17.0, 20.5, (1, 3), (_KETTLE, _MICROWAVE)),
)


def _kitchen(rng: Random, day: Day) -> list[Segment]:
    bursts: list[tuple[float, float, float, float]] = []
    for lo, hi, (n_lo, n_hi), choices in _KITCHEN_BURSTS:
        extra = 1 if day.weekend and lo > 11.0 else 0
        for _ in range(rng.randint(n_lo, n_hi + extra)):
            (w_lo, w_hi), (m_lo, m_hi), pf = rng.choice(choices)
            start = rng.uniform(lo, hi) * HOUR
            bursts.append((start, rng.uniform(m_lo, m_hi) * MINUTE, rng.uniform(w_lo, w_hi), pf))
    tl = _Timeline(base=5.0, base_pf=-0.95)  # clocks and standby electronics
    for start, duration, watts, pf in sorted(bursts):
        tl.add(start, start + duration, watts, pf)
    return tl.segments()


def _ev_charger(rng: Random, day: Day) -> list[Segment]:
    if rng.random() >= (0.2 if day.weekend else 0.35):
        return []
    tl = _Timeline(limit=OVERNIGHT_LIMIT)
    start = rng.uniform(17.5, 21.5) * HOUR
    energy_wh = rng.uniform(8_000, 30_000)
    watts = rng.uniform(7_200, 7_400)  # 32 A single phase
    bulk_h = (energy_wh - 1_300.0) / watts  # the car tapers the last ~1.3 kWh
    t = tl.add(start, start + bulk_h * HOUR, watts, pf=0.99)
    t = tl.add(t, t + 15 * MINUTE, rng.uniform(3_300, 3_700), pf=0.98)
    tl.add(t, t + 15 * MINUTE, rng.uniform(1_400, 1_700), pf=0.97)
    return tl.segments()


def _run_program(tl: _Timeline, rng: Random, start: float, phases: tuple[tuple[float, ...], ...]) -> None:
    """Phases are (min minutes, max minutes, heater W, motor/pump W, motor PF)."""
    t = start
    for m_lo, m_hi, heater, motor, motor_pf in phases:
        minutes = rng.uniform(m_lo, m_hi)
        motor_w = motor * rng.uniform(0.85, 1.15)
        t = tl.add(t, t + minutes * MINUTE, heater + motor_w, extra_q=reactive(motor_w, motor_pf))


_WASH_PROGRAM = (  # about 2 h: fill, heat the water, wash, rinse, spin
    (3.0, 5.0, 0.0, 20.0, 0.9),
    (14.0, 22.0, 2100.0, 60.0, 0.8),
    (40.0, 55.0, 0.0, 160.0, 0.8),
    (20.0, 30.0, 0.0, 120.0, 0.8),
    (8.0, 12.0, 0.0, 450.0, 0.85),
    (3.0, 6.0, 0.0, 8.0, 0.9),
)
_DISHWASHER_PROGRAM = (  # about 2 h: pre-wash, heat + wash, wash, hot rinse, drying
    (8.0, 12.0, 0.0, 60.0, 0.8),
    (18.0, 25.0, 1950.0, 60.0, 0.8),
    (25.0, 35.0, 0.0, 70.0, 0.8),
    (12.0, 18.0, 1900.0, 60.0, 0.8),
    (8.0, 12.0, 0.0, 60.0, 0.8),
    (30.0, 40.0, 0.0, 10.0, 0.9),
)


def _washing_machine(rng: Random, day: Day) -> list[Segment]:
    tl = _Timeline(limit=OVERNIGHT_LIMIT)
    if rng.random() < (0.6 if day.weekend else 0.3):
        _run_program(tl, rng, rng.uniform(8.0, 18.5) * HOUR, _WASH_PROGRAM)
    return tl.segments()


def _dishwasher(rng: Random, day: Day) -> list[Segment]:
    tl = _Timeline(limit=OVERNIGHT_LIMIT)
    if rng.random() < 0.55:
        after_dinner = rng.random() < 0.85
        start = rng.uniform(19.5, 22.0) if after_dinner else rng.uniform(13.0, 15.0)
        _run_program(tl, rng, start * HOUR, _DISHWASHER_PROGRAM)
    return tl.segments()


def _lighting(rng: Random, day: Day) -> list[Segment]:
    # LED drivers: slightly capacitive. Dark winter mornings need light, summer evenings start late.
    tl = _Timeline()
    if rng.random() < 0.2 + 0.8 * day.heating:
        start = rng.uniform(6.0, 6.75) * HOUR
        tl.add(start, start + rng.uniform(0.75, 1.75) * HOUR, rng.uniform(60, 150), pf=-0.9)
    t = (17.0 + 4.0 * (1.0 - day.heating) + rng.uniform(-0.5, 0.5)) * HOUR
    bedtime = rng.uniform(22.5, 23.75) * HOUR
    while t < bedtime:
        t = tl.add(t, min(t + rng.uniform(20, 60) * MINUTE, bedtime), rng.uniform(80, 300), pf=-0.9)
    return tl.segments()


def _office(rng: Random, day: Day) -> list[Segment]:
    tl = _Timeline(base=12.0, base_pf=-0.95)  # standby: monitors, router
    if day.weekend:
        return tl.segments()
    t = rng.uniform(8.0, 9.0) * HOUR
    lunch = rng.uniform(12.0, 12.75) * HOUR
    leave = rng.uniform(17.0, 18.5) * HOUR
    while t < leave:
        if lunch <= t < lunch + HOUR:
            t = tl.add(t, t + rng.uniform(30, 60) * MINUTE, rng.uniform(35, 50), pf=-0.95)
            lunch = -DAY  # once
            continue
        t = tl.add(t, min(t + rng.uniform(15, 45) * MINUTE, leave), rng.uniform(100, 200), pf=-0.95)
    return tl.segments()


def _living_room(rng: Random, day: Day) -> list[Segment]:
    # Base: router, standby, aquarium pump (mixed, slightly inductive); TV and soundbar on top.
    base = rng.uniform(55, 65)
    tl = _Timeline(base=base, base_pf=0.93)
    sessions: list[tuple[float, float]] = []
    if day.weekend and rng.random() < 0.4:
        start = rng.uniform(14.0, 16.0) * HOUR
        sessions.append((start, start + rng.uniform(1.0, 2.5) * HOUR))
    if rng.random() < 0.85:
        sessions.append((rng.uniform(18.5, 20.0) * HOUR, rng.uniform(22.0, 23.5) * HOUR))
    for start, end in sessions:
        t = start
        while t < end:
            tv = rng.uniform(120, 240)
            t = tl.add(t, min(t + rng.uniform(20, 50) * MINUTE, end), base + tv, pf=0.95)
    return tl.segments()


#: The default house. Channel 0 sees the whole house (hence a 60 A CT); the EV charger draws 32 A.
CIRCUITS: tuple[Circuit, ...] = (
    Circuit(0, "Grid", "Grid", Role.GRID, current_rating=60.0),
    Circuit(1, "Solar PV", "Solar PV", Role.PV),
    Circuit(2, "Battery", "Battery", Role.BATTERY),
    Circuit(3, "Kitchen", "Kitchen", Role.LOAD, schedule=_kitchen),
    Circuit(4, "Oven", "Kitchen", Role.LOAD, schedule=_oven),
    Circuit(5, "Heat pump", "Heat pump", Role.LOAD, schedule=_heat_pump),
    Circuit(6, "EV charger", "EV charger", Role.LOAD, current_rating=40.0, schedule=_ev_charger),
    Circuit(7, "Washing machine", "Washing machine", Role.LOAD, schedule=_washing_machine),
    Circuit(8, "Dishwasher", "Kitchen", Role.LOAD, schedule=_dishwasher),
    Circuit(9, "Lighting", "Lighting", Role.LOAD, schedule=_lighting),
    Circuit(10, "Fridge", "Fridge", Role.LOAD, schedule=_fridge),
    Circuit(11, "Office", "Office", Role.LOAD, schedule=_office),
    Circuit(12, "Living room", "Living room", Role.LOAD, schedule=_living_room),
)


def check_channel_count(channel_count: int) -> None:
    if not 1 <= channel_count <= MAX_CHANNELS:
        raise ValueError(f"channel_count: expected 1..{MAX_CHANNELS}, got {channel_count}")


def default_channel_configs(channel_count: int) -> list[ChannelConfig]:
    """The factory configuration of the simulated house; spare channels keep device defaults."""
    check_channel_count(channel_count)
    wired = {c.channel: c for c in CIRCUITS}
    configs: list[ChannelConfig] = []
    for index in range(channel_count):
        circuit = wired.get(index)
        if circuit is None:
            configs.append(ChannelConfig.default(index))
            continue
        configs.append(
            ChannelConfig(
                index=index,
                active=True,
                label=circuit.label,
                groupLabel=circuit.group_label,
                role=circuit.role,
                ctSpecification=CtSpecification(currentRating=circuit.current_rating),
            )
        )
    return configs
