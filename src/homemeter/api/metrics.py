"""The Prometheus exposition of `GET /metrics`: a custom collector over the latest snapshot.

A scrape reads `meter.latest` once (an immutable snapshot: never a lock, never a wait on the meter),
the component statuses and the HTTP counters, and renders them with prometheus_client's own
exposition (text 0.0.4, or OpenMetrics when the scraper asks for it).

Units are Prometheus base units (its naming conventions: SI, no prefixes), so the device's units are
converted on the way out:

- V, A, W as volts, amperes, watts; VA and VAR as `volt_amperes` and `volt_amperes_reactive`; the
  power factor as a `ratio`;
- energies in joules (Wh x 3600), and reactive and apparent energy in the matching
  `volt_ampere_reactive_seconds` / `volt_ampere_seconds` (VArh, VAh x 3600). The point of the base
  unit: `rate()` of a per-second counter is the average power itself, in W, var or VA; `increase()`
  / 3.6e6 is kWh.

Per channel (labels `channel`, `label`, `role`, `phase`, `group`), only channels that meter-values
lists (active, with a reading): the instantaneous quantities are gauges, the five energies counters.
Role aggregates (label `role`) are all gauges: their energies are sums over the role's active
channels and drop when a channel leaves the role, which a counter must not do (Prometheus would read
a reset and `rate()` would jump); sum the per-channel counters by role for rates instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from homemeter import __version__
from homemeter.api.services import Services
from homemeter.component import ComponentStatus, State
from homemeter.meter.quantities import QUANTITIES, Kind, Quantity
from homemeter.meter.snapshot import ChannelReading, MeterSnapshot, RoleAggregate

PREFIX = "homemeter"
CHANNEL_LABELS = ("channel", "label", "role", "phase", "group")

#: The device's unit -> (Prometheus base unit, factor from the device's unit).
BASE_UNITS: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        "V": ("volts", 1.0),
        "A": ("amperes", 1.0),
        "W": ("watts", 1.0),
        "VA": ("volt_amperes", 1.0),
        "VAR": ("volt_amperes_reactive", 1.0),
        "": ("ratio", 1.0),
        "Wh": ("joules", 3600.0),
        "VARh": ("volt_ampere_reactive_seconds", 3600.0),
        "VAh": ("volt_ampere_seconds", 3600.0),
    }
)


@dataclass(frozen=True, slots=True)
class Series:
    """One metric family generated from a row of the quantity table."""

    name: str  # without the unit; prometheus_client appends it (and `_total` for counters)
    unit: str
    scale: float
    attr: str
    counter: bool
    help: str

    def family(self, labels: tuple[str, ...]) -> GaugeMetricFamily | CounterMetricFamily:
        if self.counter:
            return CounterMetricFamily(self.name, self.help, labels=labels, unit=self.unit)
        return GaugeMetricFamily(self.name, self.help, labels=labels, unit=self.unit)


def _series(scope: str, q: Quantity, counter: bool) -> Series:
    unit, scale = BASE_UNITS[q.unit]
    factor = f" x {scale:g}" if scale != 1.0 else ""
    shown = f"{q.unit}{factor}" if q.unit else "dimensionless"
    return Series(f"{PREFIX}_{scope}_{q.attr}", unit, scale, q.attr, counter,
                  f"{q.description} (meter-values {q.key}, {shown})")  # fmt: skip


CHANNEL_SERIES: tuple[Series, ...] = tuple(_series("channel", q, q.kind is Kind.ENERGY) for q in QUANTITIES)
_ROLE_ATTRS = frozenset(f.name for f in fields(RoleAggregate))
#: Role aggregates carry every quantity but voltage and current (as their Modbus blocks).
ROLE_SERIES: tuple[Series, ...] = tuple(
    _series("role", q, False) for q in QUANTITIES if q.attr in _ROLE_ATTRS
)


def channel_labels(c: ChannelReading) -> tuple[str, ...]:
    """Label values in `CHANNEL_LABELS` order (phase as meter-values writes it: 1..4)."""
    return (str(c.index), c.label, c.role.value, str(int(c.phase)), c.group_label)


class MeterCollector(Collector):
    """Everything homemeter knows, read once per scrape (process metrics: `ProcessCollector`)."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def collect(self) -> Iterator[Metric]:
        svc = self._svc
        snap = svc.meter.latest  # the one snapshot read of this scrape
        info = GaugeMetricFamily(f"{PREFIX}_build_info", "Version of this homemeter", labels=("version",))
        info.add_metric((__version__,), 1.0)
        yield info
        yield from channel_families(snap)
        yield from role_families(snap)
        yield from meter_families(snap, svc.config.current.sampleTime / 1000.0)
        yield from component_families(svc.components.statuses())
        # Rendered on the event loop: its tasks now (a reconnect loop that leaks them shows here).
        yield _gauge("asyncio_tasks", "Tasks alive in the event loop", len(asyncio.all_tasks()))
        http = CounterMetricFamily(
            f"{PREFIX}_http_requests",
            "HTTP requests answered below 400 (ok) and from 400 (error; Digest challenges included)",
            labels=("outcome",),
        )
        http.add_metric(("ok",), svc.stats.requests)
        http.add_metric(("error",), svc.stats.errors)
        yield http


def channel_families(snap: MeterSnapshot) -> Iterator[Metric]:
    readings = [(channel_labels(c), c) for c in snap.with_readings()]
    for s in CHANNEL_SERIES:
        family = s.family(CHANNEL_LABELS)
        for labels, c in readings:
            family.add_metric(labels, getattr(c, s.attr) * s.scale)
        yield family


def role_families(snap: MeterSnapshot) -> Iterator[Metric]:
    for s in ROLE_SERIES:
        family = s.family(("role",))
        for a in snap.aggregates:
            family.add_metric((a.role.value,), getattr(a, s.attr) * s.scale)
        yield family


def _gauge(name: str, help_text: str, value: float, unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", help_text, value=value, unit=unit)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=value)


def meter_families(snap: MeterSnapshot, sample_time_s: float) -> Iterator[Metric]:
    """Grid frequency and the meter's own health: cadence, late windows, readings and failures."""
    yield _gauge("grid_frequency", "Grid frequency, filtered", snap.grid_frequency, "hertz")
    yield _gauge("meter_sample_time", "Configured line-cycle window (sampleTime)", sample_time_s, "seconds")
    yield _gauge("meter_uptime", "Meter clock since start (simulated time under --speed)",
                 snap.uptime_ms / 1000.0, "seconds")  # fmt: skip
    yield _gauge("meter_last_snapshot_timestamp", "Meter clock time of the latest snapshot "
                 "(ahead of wall time under --speed)", snap.taken_at, "seconds")  # fmt: skip
    yield _counter("meter_snapshots", "Snapshots published since start", snap.seq)
    yield _counter("meter_readings", "Readings accepted since start (readingCount)", snap.readings)
    yield _counter("meter_reading_failures", "Readings discarded since start (readingCountFailure)",
                   snap.failures)  # fmt: skip
    yield _counter("meter_late_windows", "Windows processed over one window after they ended "
                   "(the service was held up)", snap.late_windows)  # fmt: skip
    yield _counter("meter_skipped_windows", "Windows never processed after a long stall (suspend)",
                   snap.skipped_windows)  # fmt: skip


def _number(value: object) -> float | None:
    """A status detail as a sample value: numbers and booleans only (addresses and texts are not)."""
    if isinstance(value, bool | int | float):
        return float(value)
    return None


def component_families(statuses: Mapping[str, ComponentStatus]) -> Iterator[Metric]:
    """Every component alike: state, counters and numeric details (queue backlog, clients)."""
    state = GaugeMetricFamily(
        f"{PREFIX}_component_state",
        "1 for the state each component is in, 0 for the others",
        labels=("component", "state"),
    )
    since = GaugeMetricFamily(
        f"{PREFIX}_component_state_since_timestamp",
        "When the component entered its state",
        labels=("component",),
        unit="seconds",
    )
    events = CounterMetricFamily(
        f"{PREFIX}_component_events",
        "Counters of each component (Modbus requests, energy saves and saveErrors, ...)",
        labels=("component", "counter"),
    )
    details = GaugeMetricFamily(
        f"{PREFIX}_component_detail",
        "Numeric status details of each component (clients, backlog, ...; booleans as 0/1)",
        labels=("component", "detail"),
    )
    for name, status in statuses.items():
        for s in State:
            state.add_metric((name, s.value), 1.0 if s is status.state else 0.0)
        since.add_metric((name,), status.since)
        for counter, n in status.counters.items():
            events.add_metric((name, counter), n)
        for key, value in status.details.items():
            number = _number(value)
            if number is not None:
                details.add_metric((name, key), number)
    yield from (state, since, events, details)


class Exposition:
    """The registry of one service and its rendering, chosen by the scraper's Accept header."""

    def __init__(self, svc: Services) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(MeterCollector(svc))
        # Its own registry, not the global one: two services in one process (tests) stay apart.
        ProcessCollector(registry=self.registry)

    def render(self, accept: str) -> tuple[bytes, str]:
        """The body and its content type."""
        encoder: Callable[[CollectorRegistry], bytes]
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
