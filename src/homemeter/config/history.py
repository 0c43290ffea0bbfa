"""Energy history archive settings: the `history` section of the configuration file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HistoryConfig(BaseModel):
    """How long hourly energy rows are kept (the device keeps everything until a reset deletes it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retentionYears: int = Field(
        10,
        strict=True,
        ge=1,
        le=100,
        description="years of hourly history kept; older hours are pruned once a day",
    )
