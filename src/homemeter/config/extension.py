"""Fields homemeter adds to an object the device defines (`influxdb/config`: CA file, queue bound).

The device's web page and scripts PUT its own fields only, so an added field is optional in a PUT and a
missing one keeps its stored value; GET lists it after the device's fields. The mark is in the field's
JSON schema, so the OpenAPI document shows which fields are ours.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

#: `Field(..., json_schema_extra=EXTENSION)`: a field the device's object does not have.
EXTENSION: dict[str, Any] = {"x-extension": True}


def extension_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """Names of the model's added fields (read from the mark: no second list)."""
    return tuple(
        name
        for name, f in model.model_fields.items()
        if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("x-extension") is True
    )
