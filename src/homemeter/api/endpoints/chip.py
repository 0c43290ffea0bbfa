"""`/ade7953/waveform/*` (the device's capture) and `/ade7953/calibrate` (homemeter's calibration helper).

Waveform: the ADE7953 sources sample the chip on their sampling thread at the next reading of the
armed channel; the simulator answers at once with sines built from the channel's latest reading;
remote meters have nothing to sample (501). The handlers only arm, ask and take: nothing here waits
on the bus.

Calibration: the user states what a reference meter shows on one channel with a steady load; the
handler averages the next readings of that channel, computes new gains (PF >= 0.99) or the phase
correction (a lagging PF, 0.5 is best) with `conversion.calibrate`, and stores them through
`svc.config.update`, which writes them to the chip live and to `config.json`.
"""

from __future__ import annotations

import asyncio
import math
from statistics import fmean

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import ApiError, JSONBytes, read_json, success, validate
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.integrations.ade7953 import Ade7953Status
from homemeter.meter.snapshot import ChannelReading
from homemeter.meter.sources.ade7953.conversion import ReferencePoint, calibrate, calibration_writes
from homemeter.meter.waveform import CaptureBusy, WaveformSource

TAG = "ADE7953"
NO_WAVEFORM = "Waveform capture is not available on this meter source (a remote meter: nothing to sample)"
NO_CHIP = "Calibration needs the ADE7953 chip: run with --source ade7953 (or ade7953-emulator)"
MAX_DEVIATION = 0.25  # a reading further off its reference is a wrong reference or a wrong CT
READING_WAIT_S = 16.0  # per reading asked for: a multiplexed channel is read at least every 15 s


class ArmWaveform(BaseModel):
    channelIndex: int = Field(strict=True, ge=0, le=16)


class WaveformStatus(BaseModel):
    state: str = Field(description="idle, armed, capturing, complete or error")
    channel: int = Field(description="255: none")
    error: str | None = Field(None, description="homemeter: why, in state error only")


class WaveformData(BaseModel):
    channelIndex: int
    sampleCount: int
    captureStartUnixMillis: int
    captureStartMicros: int
    voltagePhase: int
    currentPhase: int
    phaseShiftDegrees: float
    voltage: list[float] = Field(description="V")
    current: list[float] = Field(description="A, sign as the channel's reverse flag says")
    microsDelta: list[int] = Field(description="µs since the first sample")


class CalibrationRequest(BaseModel):
    """What a reference meter shows on one channel carrying a steady load."""

    model_config = ConfigDict(extra="forbid")
    channelIndex: int = Field(strict=True, ge=0, le=16)
    voltage: float = Field(gt=0.0, le=1000.0, allow_inf_nan=False, description="true V RMS")
    current: float | None = Field(None, gt=0.0, le=10_000.0, allow_inf_nan=False, description="true A RMS")
    activePower: float | None = Field(
        None, gt=0.0, le=10_000_000.0, allow_inf_nan=False, description="true W (instead of current)"
    )
    powerFactor: float = Field(
        1.0,
        ge=0.05,
        le=1.0,
        allow_inf_nan=False,
        description=">= 0.99: gain step (a resistive load); below: phase step (lagging, 0.5 is best)",
    )
    samples: int = Field(5, strict=True, ge=1, le=20, description="readings averaged")

    @model_validator(mode="after")
    def _one_of_current_or_power(self) -> CalibrationRequest:
        if (self.current is None) == (self.activePower is None):
            raise ValueError("give the reference current or its active power (one of them)")
        return self

    @property
    def true_current(self) -> float:
        if self.current is not None:
            return self.current
        assert self.activePower is not None
        return self.activePower / (self.voltage * self.powerFactor)


class Measured(BaseModel):
    voltage: float
    current: float
    activePower: float
    powerFactor: float


class CalibrationResult(BaseModel):
    success: bool
    message: str
    channelIndex: int
    step: str = Field(description="gain or phase")
    measured: Measured = Field(description="average of the readings before the correction")
    errorPercent: dict[str, float] = Field(description="measured against the reference, before")
    previous: dict[str, int] = Field(description="calibration values changed, before")
    calibration: dict[str, int] = Field(description="calibration values changed, now in the chip")
    sharedBy: list[int] = Field(description="channels these current-channel registers serve")


def endpoints(svc: Services) -> list[Endpoint]:  # noqa: C901 - one closure per endpoint
    def chip() -> Ade7953Status | None:
        found = svc.components.get(Ade7953Status.name)
        return found if isinstance(found, Ade7953Status) else None

    def capturer() -> WaveformSource | None:
        status = chip()
        return status.waveforms if status is not None else None

    def channel_index(index: int) -> int:
        if index >= svc.channel_count:
            raise ApiError(400, f"Invalid channel index: channels are 0..{svc.channel_count - 1}")
        if not svc.config.current.channels[index].active:
            raise ApiError(400, f"channelIndex: channel {index} is not active")
        return index

    async def arm(request: Request) -> Response:
        doc = await read_json(request, 64)
        if not isinstance(doc, dict) or not isinstance(doc.get("channelIndex"), int):
            raise ApiError(400, "Missing or invalid channelIndex")
        index = channel_index(validate(ArmWaveform, doc).channelIndex)
        try:
            found = capturer()
            if found is None:
                raise ApiError(501, NO_WAVEFORM)
            found.arm_waveform(index)
        except CaptureBusy as err:
            raise ApiError(409, str(err)) from err
        return success("Waveform capture armed successfully")

    async def status(request: Request) -> Response:
        found = capturer()
        if found is None:
            return JSONBytes({"state": "idle", "channel": 255})  # nothing can ever be armed
        state, channel = found.waveform.status()
        body: dict[str, object] = {"state": state, "channel": channel}
        if state == "error" and found.waveform.error:
            body["error"] = found.waveform.error
        return JSONBytes(body)

    async def data(request: Request) -> Response:
        found = capturer()
        result = found.waveform.take() if found is not None else None
        if result is None:
            return Response(status_code=204)
        return JSONBytes(result.body())

    async def calibrate_channel(request: Request) -> Response:
        ask = validate(CalibrationRequest, await read_json(request, 1024))
        status = chip()
        if status is None or status.registers is None:
            raise ApiError(501, NO_CHIP)
        result = await _calibrate(svc, channel_index(ask.channelIndex), ask)
        return JSONBytes(result.model_dump())

    E = Endpoint
    return [
        E("POST", "/ade7953/waveform/arm", arm, "Arm a waveform capture", TAG, body=ArmWaveform,
          errors=(400, 409, 413, 501),
          description="The ADE7953 sources sample the chip (4 line cycles from a voltage zero "
          "crossing, ~7 kHz) at the channel's next reading; the simulator returns sines built from "
          "the channel's latest reading; remote meters answer 501. An armed capture whose channel "
          "is not read within 30 s ends in state error."),
        E("GET", "/ade7953/waveform/status", status, "Waveform capture state", TAG,
          response=WaveformStatus),
        E("GET", "/ade7953/waveform/data", data, "The finished capture (once)", TAG,
          response=WaveformData, errors=(204,),
          description="204 until the capture is complete; reading it returns the state to idle."),
        E("POST", "/ade7953/calibrate", calibrate_channel, "Calibrate a channel against a reference load",
          TAG, body=CalibrationRequest, response=CalibrationResult, errors=(400, 409, 413, 501, 503),
          description="homemeter's calibration helper. State the true voltage and current (or "
          "active power) of a steady load on the channel: at powerFactor >= 0.99 (a resistive "
          "load) the voltage, current and active-power gains are corrected, at a lower lagging "
          "power factor the phase. Channel 0 has current channel A's registers; every other "
          "channel shares channel B's (trim a single CT with its scalingFraction)."),
    ]  # fmt: skip


def _error(measured: float, true: float) -> float:
    return (measured / true - 1.0) * 100.0


async def _readings(svc: Services, index: int, count: int) -> list[ChannelReading]:
    """The channel's next `count` readings (not the one already shown: it may predate the load)."""
    seen = svc.meter.latest.channels[index].last_reading_ms
    got: list[ChannelReading] = []
    try:
        async with asyncio.timeout(READING_WAIT_S * count):
            async for snap in svc.meter.snapshots():
                reading = snap.channels[index]
                if reading.last_reading_ms is not None and reading.last_reading_ms != seen:
                    seen = reading.last_reading_ms
                    if math.isfinite(reading.current):
                        got.append(reading)
                    if len(got) == count:
                        return got
    except TimeoutError:
        pass
    raise ApiError(503, f"channel {index}: {len(got)} of {count} readings arrived; is the meter reading it?")


async def _calibrate(svc: Services, index: int, ask: CalibrationRequest) -> CalibrationResult:
    """Average the channel's next readings, compute the correction, store it (applied live)."""
    readings = await _readings(svc, index, ask.samples)
    measured = Measured(
        voltage=fmean(r.voltage for r in readings),
        current=fmean(r.current for r in readings),
        activePower=fmean(abs(r.active_power) for r in readings),
        powerFactor=fmean(abs(r.power_factor) for r in readings),
    )
    true_current = ask.true_current
    true_power = ask.voltage * true_current * ask.powerFactor
    if measured.current <= 0.0 or measured.activePower <= 0.0:
        raise ApiError(409, f"channel {index} reads no load: switch the reference load on, then repeat")
    errors = {
        "voltage": _error(measured.voltage, ask.voltage),
        "current": _error(measured.current, true_current),
        "activePower": _error(measured.activePower, true_power),
    }
    gain_step = ask.powerFactor >= 0.99
    # The phase step corrects the active power itself: only V and I must be near their references.
    for name in errors if gain_step else ("voltage", "current"):
        if abs(errors[name]) > MAX_DEVIATION * 100.0:
            raise ApiError(
                400,
                f"{name}: the channel reads {errors[name]:+.1f} % off the reference; more than "
                f"{MAX_DEVIATION:.0%} is a wrong reference value, CT specification or channel",
            )
    point = ReferencePoint(
        voltage=ask.voltage,
        current=true_current,
        power_factor=ask.powerFactor,
        measured_voltage=measured.voltage,
        measured_current=measured.current,
        measured_active_power=measured.activePower,
    )
    old = svc.config.current.ade7953
    new = calibrate(old, index != 0, point, svc.meter.latest.grid_frequency)
    try:
        calibration_writes(new)
    except ValueError as err:
        raise ApiError(400, f"the correction does not fit the chip ({err}): check the reference") from err
    await svc.config.update(ade7953=new)
    before, after = old.model_dump(), new.model_dump()
    changed = [k for k in after if after[k] != before[k]]
    step = "gain" if gain_step else "phase"
    return CalibrationResult(
        success=True,
        message=f"Channel {index} calibrated ({step} step)",
        channelIndex=index,
        step=step,
        measured=measured,
        errorPercent={k: round(v, 3) for k, v in errors.items()},
        previous={k: before[k] for k in changed},
        calibration={k: after[k] for k in changed},
        sharedBy=[0] if index == 0 else list(range(1, svc.channel_count)),
    )
