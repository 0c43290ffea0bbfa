"""`/ade7953/*`: channels, meter values, energy, sample time, raw registers (waveforms: chip.py)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import (
    ApiError,
    JSONBytes,
    merge,
    read_json,
    require_fields,
    success,
    validate,
)
from homemeter.api.routing import Endpoint, Query
from homemeter.api.services import Services
from homemeter.config.app import AppConfig
from homemeter.config.channel import ChannelConfig
from homemeter.errors import SourceUnavailable
from homemeter.integrations.ade7953 import Ade7953Status
from homemeter.meter.payloads import channel_values
from homemeter.meter.quantities import ENERGY_QUANTITIES, MAX_ENERGY, QUANTITIES
from homemeter.meter.snapshot import EnergyTotals
from homemeter.meter.source import RegisterAccess

TAG = "ADE7953"
NonNegative = Annotated[float, Field(strict=True, ge=0.0, allow_inf_nan=False)]
EnergyTotal = Annotated[float, Field(strict=True, ge=0.0, le=MAX_ENERGY, allow_inf_nan=False)]


# Generated from the quantity table: the schemas cannot drift from the payload.
_VALUE_FIELDS: dict[str, Any] = {
    q.key: (float, Field(description=f"{q.description} ({q.unit or 'ratio'})")) for q in QUANTITIES
}
_ENERGY_FIELDS: dict[str, Any] = {"channel": (int, Field(strict=True, ge=0))} | {
    q.key: (EnergyTotal, Field(description=q.unit)) for q in ENERGY_QUANTITIES
}
MeterValues: type[BaseModel] = create_model(
    "MeterValues",
    __doc__="One channel's values (the body of `meter-values?index=N`), in the device's key order.",
    **_VALUE_FIELDS,
)


class ChannelMeterValues(BaseModel):
    index: int
    label: str
    phase: int
    groupLabel: str
    role: str
    data: MeterValues


class RegisterValue(BaseModel):
    address: int
    bits: int
    signed: bool
    value: int


class RegisterWrite(BaseModel):
    address: int = Field(ge=0, le=65535)
    bits: int = Field(description="8, 16, 24 or 32")
    value: int


REGISTER_WIDTHS = (8, 16, 24, 32)


def _register_query(request: Request) -> tuple[int, int, bool]:
    """The device's parameter checks, in its order and words."""
    params = request.query_params
    values = []
    for name, top in (("address", 65535), ("bits", 255)):
        raw = params.get(name)
        if raw is None:
            raise ApiError(400, f"Missing register {name} parameter")
        if not raw.isdigit() or int(raw) > top:
            raise ApiError(400, f"Register {name} out of range (0-{top})")
        values.append(int(raw))
    return values[0], values[1], params.get("signed") == "true"


def _register_body(doc: Any) -> RegisterWrite:
    fields = ("address", "bits", "value")
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(f), int) and not isinstance(doc.get(f), bool) for f in fields
    ):
        raise ApiError(400, "address, bits, and value fields must be integers")
    if not 0 <= doc["address"] <= 65535:
        raise ApiError(400, "Register address out of range (0-65535)")
    if not 0 <= doc["bits"] <= 255:
        raise ApiError(400, "Register bits out of range (0-255)")
    return RegisterWrite(address=doc["address"], bits=doc["bits"], value=doc["value"])


class SampleTime(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sampleTime: int = Field(strict=True, ge=200, le=60_000, description="ms")


class GridFrequency(BaseModel):
    gridFrequency: float


EnergyValues: type[BaseModel] = create_model(
    "EnergyValues",
    __config__=ConfigDict(extra="ignore"),
    **_ENERGY_FIELDS,
)


INDEX = Query("index", {"type": "integer", "minimum": 0, "maximum": 16}, "channel index")


def _index(request: Request, count: int, required: bool = False) -> int | None:
    raw = request.query_params.get("index")
    if raw is None:
        if required:
            raise ApiError(400, "Missing channel index parameter")
        return None
    if not raw.isdigit() or int(raw) >= count:
        raise ApiError(400, f"Invalid channel index: must be 0..{count - 1}")
    return int(raw)


def endpoints(svc: Services) -> list[Endpoint]:  # noqa: C901 - one closure per endpoint
    meter = svc.meter

    def count() -> int:
        return svc.channel_count

    async def set_channels(channels: tuple[ChannelConfig, ...]) -> AppConfig:
        try:
            return await svc.config.update(channels=channels)
        except ValueError as err:  # pydantic's ValidationError is a ValueError
            raise ApiError(400, str(err).replace("\n", " ")) from err

    async def get_meter_values(request: Request) -> Response:
        index = _index(request, count())
        if index is None:
            # 200 [] before the first reading: the device's 500 breaks Home Assistant's first refresh.
            return JSONBytes(svc.meter_values.get())
        return JSONBytes(channel_values(meter.latest.channels[index]))

    async def get_grid_frequency(request: Request) -> Response:
        return JSONBytes({"gridFrequency": meter.latest.grid_frequency})

    async def get_channel(request: Request) -> Response:
        index = _index(request, count())
        channels = svc.config.current.channels
        if index is not None:
            return JSONBytes(channels[index].model_dump(mode="json"))
        body = orjson.dumps([c.model_dump(mode="json") for c in channels])
        etag = f'"{zlib.crc32(body):08x}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return JSONBytes(body, headers={"ETag": etag, "Cache-Control": "no-cache"})

    def _one_channel(doc: Any, partial: bool) -> ChannelConfig:
        if not isinstance(doc, dict):
            raise ApiError(400, "body: expected a JSON object")
        index = doc.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count():
            raise ApiError(400, f"index: required, an integer 0..{count() - 1}")
        current = svc.config.current.channels[index]
        if partial:
            if len(doc) < 2:
                raise ApiError(400, "body: PATCH needs index and at least one field to change")
            doc = merge(current.model_dump(mode="json"), doc)
        else:
            require_fields(doc, ChannelConfig)
        return validate(ChannelConfig, doc)

    async def _write_channels(updated: list[ChannelConfig]) -> None:
        before = svc.config.current.channels
        channels = list(before)
        for cfg in updated:
            channels[cfg.index] = cfg
        await set_channels(tuple(channels))

    async def put_channel(request: Request) -> Response:
        cfg = _one_channel(await read_json(request, 512), partial=False)
        await _write_channels([cfg])
        return success("ADE7953 channel data updated successfully")

    async def patch_channel(request: Request) -> Response:
        cfg = _one_channel(await read_json(request, 512), partial=True)
        await _write_channels([cfg])
        return success("ADE7953 channel data updated successfully")

    async def put_channels(request: Request) -> Response:
        doc = await read_json(request, 512 * 17)
        if not isinstance(doc, list) or not doc:
            raise ApiError(400, "Request body must be an array of channel configurations")
        # Validated as a whole before anything is applied (the device applied them one by one).
        updated = [_one_channel(item, partial=False) for item in doc]
        await _write_channels(updated)
        return success("All channels updated successfully")

    async def reset_channel(request: Request) -> Response:
        index = _index(request, count(), required=True)
        assert index is not None
        channels = list(svc.config.current.channels)
        channels[index] = svc.factory_channels(count())[index]
        await set_channels(tuple(channels))
        return success("ADE7953 channel data reset successfully")

    async def get_sample_time(request: Request) -> Response:
        return JSONBytes({"sampleTime": svc.config.current.sampleTime})

    async def put_sample_time(request: Request) -> Response:
        body = validate(SampleTime, await read_json(request, 64))
        await svc.config.update(sampleTime=body.sampleTime)
        return success("ADE7953 sample time updated successfully")

    async def reset_energy(request: Request) -> Response:
        index = _index(request, count())
        await svc.control.reset_energy(index)
        if index is None:
            return success("ADE7953 energy values reset successfully")
        return success("ADE7953 energy values reset for channel")

    async def put_energy(request: Request) -> Response:
        values = validate(EnergyValues, await read_json(request, 256)).model_dump()
        if values["channel"] >= count():
            raise ApiError(400, f"channel: must be 0..{count() - 1}")
        totals = EnergyTotals(*(values[q.key] for q in ENERGY_QUANTITIES))
        await svc.control.set_energy(values["channel"], totals)
        return success("ADE7953 energy values updated successfully")

    def registers() -> RegisterAccess:
        """The chip's raw registers; 501 when the source has no chip (the simulator)."""
        status = svc.components.get(Ade7953Status.name)
        access = status.registers if isinstance(status, Ade7953Status) else None
        if access is None:
            raise ApiError(501, "Raw ADE7953 access is not available on this meter source")
        return access

    async def get_register(request: Request) -> Response:
        # The device's parameter checks first, so a client's mistake is a 400 like on the device.
        address, bits, signed = _register_query(request)
        access = registers()
        if bits not in REGISTER_WIDTHS:
            raise ApiError(400, "Register bits must be 8, 16, 24 or 32")
        try:
            value = await asyncio.to_thread(access.read_register, address, bits, signed)
        except SourceUnavailable as err:
            raise ApiError(503, f"ADE7953 register read failed: {err}") from err
        return JSONBytes({"address": address, "bits": bits, "signed": signed, "value": value})

    async def put_register(request: Request) -> Response:
        body = _register_body(await read_json(request, 128))
        access = registers()
        if body.bits not in REGISTER_WIDTHS:
            raise ApiError(400, "Register bits must be 8, 16, 24 or 32")
        try:
            await asyncio.to_thread(access.write_register, body.address, body.bits, body.value)
        except ValueError as err:
            raise ApiError(400, f"value: {err}") from err
        except SourceUnavailable as err:
            raise ApiError(503, f"ADE7953 register write failed: {err}") from err
        return success("ADE7953 register written successfully")

    E = Endpoint
    return [
        E(
            "GET",
            "/ade7953/meter-values",
            get_meter_values,
            "Meter values of active channels",
            TAG,
            response=list[ChannelMeterValues] | MeterValues,
            query=(INDEX,),
            errors=(400,),
            description="Without index: active channels with a reading (200 [] before the first). "
            "With index: that channel's values.",
        ),
        E(
            "GET",
            "/ade7953/grid-frequency",
            get_grid_frequency,
            "Filtered grid frequency",
            TAG,
            response=GridFrequency,
        ),
        E(
            "GET",
            "/ade7953/channel",
            get_channel,
            "Channel configuration",
            TAG,
            response=list[ChannelConfig] | ChannelConfig,
            query=(INDEX,),
            errors=(400,),
        ),
        E(
            "PUT",
            "/ade7953/channel",
            put_channel,
            "Replace one channel's configuration",
            TAG,
            body=ChannelConfig,
            errors=(400, 413),
            description="A role change resets that channel's energy counters.",
        ),
        E(
            "PATCH",
            "/ade7953/channel",
            patch_channel,
            "Change some fields of one channel",
            TAG,
            body=dict[str, Any],
            errors=(400, 413),
        ),
        E(
            "PUT",
            "/ade7953/channels",
            put_channels,
            "Replace several channels at once",
            TAG,
            body=list[ChannelConfig],
            errors=(400, 413),
            description="Validated as a whole: nothing is applied if any element is invalid.",
        ),
        E(
            "POST",
            "/ade7953/channel/reset",
            reset_channel,
            "Restore a channel's defaults",
            TAG,
            query=(Query(INDEX.name, INDEX.schema, INDEX.description, required=True),),
            errors=(400,),
        ),
        E(
            "GET",
            "/ade7953/sample-time",
            get_sample_time,
            "Sampling window",
            TAG,
            response=SampleTime,
        ),
        E(
            "PUT",
            "/ade7953/sample-time",
            put_sample_time,
            "Set the sampling window",
            TAG,
            body=SampleTime,
            errors=(400, 413),
        ),
        E(
            "POST",
            "/ade7953/energy/reset",
            reset_energy,
            "Reset energy counters",
            TAG,
            query=(INDEX,),
            errors=(400,),
        ),
        E(
            "PUT",
            "/ade7953/energy",
            put_energy,
            "Set one channel's energy counters",
            TAG,
            body=EnergyValues,
            errors=(400, 413),
        ),
        E(
            "GET",
            "/ade7953/register",
            get_register,
            "Raw chip register",
            TAG,
            response=RegisterValue,
            query=(
                Query("address", {"type": "integer", "minimum": 0, "maximum": 65535}, "register", True),
                Query("bits", {"type": "integer", "minimum": 0, "maximum": 255}, "width: 8/16/24/32", True),
                Query("signed", {"type": "string", "enum": ["true", "false"]}, "decode as signed"),
            ),
            errors=(400, 501, 503),
            description="The ADE7953 sources read the chip (verified); the simulator answers 501.",
        ),
        E(
            "PUT",
            "/ade7953/register",
            put_register,
            "Write a raw chip register",
            TAG,
            body=RegisterWrite,
            errors=(400, 413, 501, 503),
            description="The ADE7953 sources write the chip (verified); the simulator answers 501.",
        ),
    ]
