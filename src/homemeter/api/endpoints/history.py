"""`/history/*`: energy per period from the hourly archive (JSON for the web UI's charts, CSV download).

Not a device endpoint: the device's dashboard computes periods in the browser from its CSV files
(those are served too, under `files/energy/...`). Here one request answers a chart: buckets in the
viewer's time zone, per channel, role or group label, with resets and role changes accounted for.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.endpoints.settings import ConfigSection, config_endpoints
from homemeter.api.responses import ApiError, JSONBytes
from homemeter.api.routing import Endpoint, Query
from homemeter.api.services import Services
from homemeter.config.history import HistoryConfig
from homemeter.store.history import HistoryArchive
from homemeter.store.history_query import (
    Buckets,
    EnergyResult,
    GroupBy,
    QueryError,
    Resolution,
    buckets,
)

TAG = "History"
SETTINGS = ConfigSection(
    "history", "/history", "History", "history archive", HistoryConfig, 256, TAG,
    applies="retentionYears: hours older than that are deleted (at once, then daily).",
)  # fmt: skip
MIN_YEAR, MAX_YEAR = 1970, 2200  # outside, timestamps stop being meaningful for a meter


class EnergySeries(BaseModel):
    """One line of the chart: a channel, a role or a group label."""

    key: str  # channel index, role name or group label
    label: str
    role: str  # its role now (by role: the key); a group's channels share one
    channels: list[int]  # the channels summed into it
    imported: list[float | None]  # Wh per bucket; null outside the archived history
    exported: list[float | None]


class HistoryEvent(BaseModel):
    at: str  # local ISO 8601 time
    channel: int
    kind: str  # reset, set, role, group
    roleBefore: str
    roleAfter: str
    groupBefore: str
    groupAfter: str


class EnergyHistory(BaseModel):
    timezone: str
    resolution: Resolution
    by: GroupBy
    unit: str  # "Wh"
    buckets: list[str]  # local ISO 8601 start of each bucket
    hours: list[int]  # hours in each bucket: 23 or 25 on a daylight-saving day
    end: str  # end of the last bucket
    series: list[EnergySeries]
    events: list[HistoryEvent]  # resets and role/group changes in the range


_QUERY = (
    Query("from", {"type": "string"}, "start: YYYY, YYYY-MM, YYYY-MM-DD or an ISO 8601 time (local "
          "to tz when it has no offset); default: the current day, month, year or the first year"),
    Query("to", {"type": "string"}, "end (exclusive), same forms; default: one day/month/year after "
          "from (resolution hour/day/month), or the end of this year (year)"),
    Query("resolution", {"enum": [r.value for r in Resolution]}, "bucket size (default: hour)"),
    Query("tz", {"type": "string"}, "IANA time zone of the buckets, e.g. Europe/Rome (default: UTC)"),
    Query("by", {"enum": [g.value for g in GroupBy]}, "one series per channel, role or group label "
          "(default: channel)"),
)  # fmt: skip


def _archive(svc: Services) -> HistoryArchive:
    found = svc.components.get("history")
    if not isinstance(found, HistoryArchive):
        raise ApiError(503, "the energy history archive is not running")
    return found


def _choice(params: QueryParams, name: str, kind: type[Resolution] | type[GroupBy], default: str) -> Any:
    value = params.get(name, default)
    try:
        return kind(value)
    except ValueError:
        raise ApiError(400, f"{name}: one of {', '.join(v.value for v in kind)}, not {value!r}") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, f"tz: unknown time zone {name!r}; use an IANA name such as Europe/Rome") from None


def _time(name: str, value: str, tz: ZoneInfo) -> datetime:
    """`YYYY`, `YYYY-MM`, a date or an ISO 8601 time; without an offset it is local to `tz`."""
    try:
        parts = value.split("-")
        if len(value) == 4:
            t = datetime(int(value), 1, 1)
        elif len(value) == 7 and len(parts) == 2:
            t = datetime(int(parts[0]), int(parts[1]), 1)
        elif len(value) == 10:
            d = date.fromisoformat(value)
            t = datetime(d.year, d.month, d.day)
        else:
            t = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name}: not a date or ISO 8601 time: {value[:40]!r}") from None
    if not MIN_YEAR <= t.year <= MAX_YEAR:
        raise ApiError(400, f"{name}: the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return t.replace(tzinfo=tz) if t.tzinfo is None else t.astimezone(tz)


def _default_start(now: datetime, resolution: Resolution, first_year: int | None) -> datetime:
    if resolution is Resolution.HOUR:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if resolution is Resolution.DAY:
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if resolution is Resolution.MONTH:
        return now.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return now.replace(year=first_year or now.year, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _default_end(start: datetime, resolution: Resolution, now: datetime) -> datetime:
    """One day, month or year after `start`, in local civil time (a DST day keeps 23 or 25 hours)."""
    d = start.date()
    tz = start.tzinfo
    if resolution is Resolution.HOUR:
        return datetime.fromordinal(d.toordinal() + 1).replace(tzinfo=tz)
    if resolution is Resolution.DAY:
        return datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=tz)
    if resolution is Resolution.MONTH:
        return datetime(d.year + 1, 1, 1, tzinfo=tz)
    return datetime(max(d.year, now.year) + 1, 1, 1, tzinfo=tz)


async def _query(svc: Services, params: QueryParams) -> tuple[EnergyResult, dict[str, Any]]:
    archive = _archive(svc)
    resolution: Resolution = _choice(params, "resolution", Resolution, "hour")
    by: GroupBy = _choice(params, "by", GroupBy, "channel")
    tz_name = params.get("tz", "UTC")
    tz = _zone(tz_name)
    now = datetime.fromtimestamp(archive.now(), tz)
    if "from" in params:
        start = _time("from", params["from"], tz)
    else:
        first = await archive.first_hour()
        start = _default_start(now, resolution, datetime.fromtimestamp(first, tz).year if first else None)
    end = _time("to", params["to"], tz) if "to" in params else _default_end(start, resolution, now)
    try:
        b: Buckets = buckets(start, end, resolution, tz)
    except QueryError as err:
        raise ApiError(400, str(err)) from err
    result = await archive.energy(b, by)
    meta = {"timezone": tz_name, "resolution": resolution.value, "by": by.value, "unit": "Wh"}
    return result, meta


def _body(result: EnergyResult, meta: dict[str, Any]) -> dict[str, Any]:
    b = result.buckets
    tz = b.end.tzinfo
    return {
        **meta,
        "buckets": [t.isoformat() for t in b.starts],
        "hours": b.hours,
        "end": b.end.isoformat(),
        "series": [
            {"key": s.key, "label": s.label, "role": s.role, "channels": s.channels, "imported": s.imported,
             "exported": s.exported}
            for s in result.series
        ],
        "events": [
            {"at": datetime.fromtimestamp(e.at, tz).isoformat(), "channel": e.channel, "kind": e.kind,
             "roleBefore": e.role_before, "roleAfter": e.role_after, "groupBefore": e.group_before,
             "groupAfter": e.group_after}
            for e in result.events
        ],
    }  # fmt: skip


def _csv(result: EnergyResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "end", "series", "label", "imported_wh", "exported_wh"])
    b = result.buckets
    ends = [*b.starts[1:], b.end]
    for s in result.series:
        for start, end, imp, exp in zip(b.starts, ends, s.imported, s.exported, strict=True):
            if imp is not None and exp is not None:
                writer.writerow([start.isoformat(), end.isoformat(), s.key, s.label, imp, exp])
    return out.getvalue()


def endpoints(svc: Services) -> list[Endpoint]:
    async def get_energy(request: Request) -> Response:
        result, meta = await _query(svc, request.query_params)
        return JSONBytes(_body(result, meta))

    async def get_energy_csv(request: Request) -> Response:
        result, meta = await _query(svc, request.query_params)
        start = result.buckets.starts[0] if result.buckets.starts else result.buckets.end
        name = f"homemeter-energy-{meta['by']}-{meta['resolution']}-{start:%Y%m%d}.csv"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(_csv(result), media_type="text/csv", headers=headers)

    E = Endpoint
    return [
        E(
            "GET",
            "/history/energy",
            get_energy,
            "Energy per period (hour/day/month/year) per channel, role or group",
            TAG,
            response=EnergyHistory,
            query=_QUERY,
            errors=(400, 503),
            description="Imported and exported active energy in Wh per bucket, from the hourly archive "
            "(the open hour from the live counters). Buckets follow local civil time in `tz`: a "
            "daylight-saving day has 23 or 25 hours (`hours`). A reset or role change inside the range "
            "is accounted for (listed in `events`): energy before it counts under the old role, after "
            "it under the new one. null: before the archive starts or after now. At most 10,000 buckets.",
        ),
        E(
            "GET",
            "/history/energy.csv",
            get_energy_csv,
            "The same as a CSV download",
            TAG,
            media_type="text/csv",
            query=_QUERY,
            errors=(400, 503),
            description="Columns start,end,series,label,imported_wh,exported_wh; one row per bucket "
            "and series inside the archived history.",
        ),
        *config_endpoints(svc, SETTINGS),
    ]
