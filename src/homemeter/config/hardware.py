"""Settings of the device's own hardware, kept so its clients and pages keep working.

homemeter has no status LED, and the simulator has no ADE7953 to calibrate: both are stored and
echoed, never acted on. The calibration registers are opaque until an ADE7953 source reads them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# The device stores each calibration value as a signed 32-bit integer and checks only that.
Int32 = Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]
UNITY_GAIN = 4_194_304  # 0x400000: the chip's gain register value for a factor of 1.0


class LedConfig(BaseModel):
    """`led/brightness`: percent, stored for the configuration page (no LED on a Linux host)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    brightness: int = Field(75, strict=True, ge=0, le=100, description="% (no effect on Linux)")


class Ade7953Calibration(BaseModel):
    """`ade7953/config`: the chip's 19 calibration registers (gains and offsets), wire names."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    aVGain: Int32 = 4_050_000
    aIGain: Int32 = 4_300_000
    bIGain: Int32 = 4_300_000
    aIRmsOs: Int32 = 0
    bIRmsOs: Int32 = 0
    aWGain: Int32 = UNITY_GAIN
    bWGain: Int32 = UNITY_GAIN
    aWattOs: Int32 = 0
    bWattOs: Int32 = 0
    aVarGain: Int32 = UNITY_GAIN
    bVarGain: Int32 = UNITY_GAIN
    aVarOs: Int32 = 0
    bVarOs: Int32 = 0
    aVaGain: Int32 = UNITY_GAIN
    bVaGain: Int32 = UNITY_GAIN
    aVaOs: Int32 = 0
    bVaOs: Int32 = 0
    phCalA: Int32 = 0
    phCalB: Int32 = 0
