"""An EnergyMe-Home device (or another homemeter) as a remote meter, over its REST API.

Each poll is `GET /api/v1/ade7953/meter-values` (every active channel with a reading: values and the
device's five cumulative counters) with HTTP Digest (httpx's, async: the event loop never waits).
The channel table (`GET /api/v1/ade7953/channel`, revalidated with its ETag) is read at the first
poll, every `TABLE_EVERY` polls and at once when a channel's label, role, phase or group in
meter-values differs from the table: the sources component copies labels, roles, phases, groups and
the active flag into homemeter's channels. The grid frequency (`GET /api/v1/ade7953/grid-frequency`)
is read every `FREQUENCY_EVERY` polls: it changes slowly and costs the device a request.

Errors become one `SourceUnavailable` each, with what a user can do about it (wrong password, no
answer, connection refused, an answer that is not the device's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from homemeter.config.roles import Phase, Role
from homemeter.config.sources import MeterSource
from homemeter.errors import SourceUnavailable
from homemeter.meter.quantities import ENERGY_QUANTITIES
from homemeter.meter.source import Measurement
from homemeter.meter.sources.remote import Identity, Poll, Poller, RemoteChannel

API = "/api/v1/ade7953"
TABLE_EVERY = 30  # polls between reads of the channel table (ETag: usually a bodiless 304)
FREQUENCY_EVERY = 10  # polls between reads of the grid frequency
_Number = Field(allow_inf_nan=False)


class _Data(BaseModel):
    """MeterValues (reference rest-api.md 4.5); other keys ignored."""

    model_config = ConfigDict(extra="ignore")

    voltage: float = _Number
    current: float = _Number
    activePower: float = _Number
    apparentPower: float = _Number
    reactivePower: float = _Number
    powerFactor: float = _Number
    activeEnergyImported: float = _Number
    activeEnergyExported: float = _Number
    reactiveEnergyImported: float = _Number
    reactiveEnergyExported: float = _Number
    apparentEnergy: float = _Number


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    index: int = Field(ge=0, le=255)
    label: str
    phase: Phase
    groupLabel: str
    role: Role
    data: _Data


class _ChannelData(BaseModel):
    """ChannelData (reference rest-api.md 4.4): only what homemeter copies."""

    model_config = ConfigDict(extra="ignore")

    index: int = Field(ge=0, le=255)
    active: bool
    label: str = Field(min_length=1, max_length=63)
    phase: Phase
    groupLabel: str = Field(min_length=1, max_length=63)
    role: Role


class _Frequency(BaseModel):
    model_config = ConfigDict(extra="ignore")

    gridFrequency: float = _Number


class EnergyMePoller(Poller):
    def __init__(self, config: MeterSource, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config)
        self._client = httpx.AsyncClient(
            base_url=config.url.rstrip("/"),
            auth=httpx.DigestAuth(config.user, config.password.get_secret_value()),
            timeout=config.timeout,
            transport=transport,
            headers={"accept": "application/json"},
        )
        self._polls = 0
        self._table_etag: str | None = None
        self._table: dict[int, Identity] = {}

    @property
    def requests_per_poll(self) -> int:
        return 4  # meter-values, the channel table (with a Digest re-challenge), the frequency

    async def fetch(self) -> Poll:
        try:
            items = [_Item.model_validate(x) for x in await self._get_list(f"{API}/meter-values")]
            table = None
            if self._polls % TABLE_EVERY == 0 or any(self._differs(item) for item in items):
                table = await self._channel_table()
            frequency = None
            if self._polls % FREQUENCY_EVERY == 0:
                doc = await self._get(f"{API}/grid-frequency")
                frequency = _Frequency.model_validate(doc).gridFrequency
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            reason = f"unexpected answer from {self.config.url} ({where}: {first['msg']})"
            raise SourceUnavailable(reason) from err
        self._polls += 1
        return Poll({item.index: _channel(item.data) for item in items}, frequency, table)

    def _differs(self, item: _Item) -> bool:
        known = self._table.get(item.index)
        return known is None or (known.label, known.role, known.phase, known.group_label) != (
            item.label, item.role, item.phase, item.groupLabel,
        )  # fmt: skip

    async def _channel_table(self) -> Mapping[int, Identity]:
        headers = {"if-none-match": self._table_etag} if self._table_etag else {}
        response = await self._request(f"{API}/channel", headers)
        if response.status_code != 304:
            rows = [_ChannelData.model_validate(x) for x in _list(_json(response), f"{API}/channel")]
            self._table = {r.index: Identity(r.label, r.role, r.phase, r.groupLabel, r.active) for r in rows}
            self._table_etag = response.headers.get("etag")
        return self._table

    async def _get(self, path: str) -> Any:
        return _json(await self._request(path))

    async def _get_list(self, path: str) -> list[Any]:
        return _list(await self._get(path), path)

    async def _request(self, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        try:
            response = await self._client.get(path, headers=headers)
        except httpx.TimeoutException as err:
            reason = f"no answer from {self.config.url} within {self.config.timeout:g} s"
            raise SourceUnavailable(reason) from err
        except httpx.ConnectError as err:
            raise SourceUnavailable(f"cannot connect to {self.config.url} ({err})") from err
        except httpx.HTTPError as err:
            detail = str(err) or "the connection was closed"
            raise SourceUnavailable(f"{self.config.url}: {detail} ({type(err).__name__})") from err
        if response.status_code == 401:
            raise SourceUnavailable(
                f"{self.config.url} refused the login of user {self.config.user!r}: set the password with "
                "HOMEMETER_SOURCE_PASSWORD or in the sources configuration"
            )
        if response.status_code not in (200, 304):
            text = response.text[:120].strip()
            raise SourceUnavailable(f"{self.config.url}{path} answered HTTP {response.status_code}: {text}")
        return response

    async def close(self) -> None:
        await self._client.aclose()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as err:
        raise SourceUnavailable(f"{response.url} did not answer JSON: is it an EnergyMe device?") from err


def _list(doc: Any, path: str) -> list[Any]:
    if not isinstance(doc, list):
        raise SourceUnavailable(f"{path} answered {type(doc).__name__}, expected a JSON array")
    return doc


def _channel(d: _Data) -> RemoteChannel:
    counters = tuple(float(getattr(d, q.key)) for q in ENERGY_QUANTITIES)
    m = Measurement(d.voltage, d.current, d.activePower, d.reactivePower, d.apparentPower)
    return RemoteChannel(m, d.powerFactor, counters)
