"""Secret configuration fields: kept in clear only in the configuration file, masked everywhere else.

The device returns MQTT and InfluxDB passwords and tokens in clear from `GET .../config` (reference
integrations.md 6.2.2). Here every JSON dump masks them unless the caller passes `REVEAL`, which only
`ConfigStore.save` does: the publishers need the clear value, so the file (mode 0600) holds it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, PlainSerializer, SecretStr, SerializationInfo

#: What a masked, non-empty secret reads as. A PUT/PATCH that sends it back keeps the stored secret,
#: so a client can round-trip the object it read. An empty secret reads as "" (nothing to hide).
PLACEHOLDER = "********"

#: `model_dump(mode="json", context=REVEAL)`: the one dump that contains secrets in clear.
REVEAL: dict[str, Any] = {"reveal_secrets": True}


def _dump(value: SecretStr, info: SerializationInfo) -> str:
    clear = value.get_secret_value()
    if info.context and info.context.get("reveal_secrets"):
        return clear
    return PLACEHOLDER if clear else ""


def _max_length(limit: int) -> AfterValidator:
    def check(value: SecretStr) -> SecretStr:
        # pydantic's own length message speaks of "items" for SecretStr; this one is clearer.
        if len(value.get_secret_value()) > limit:
            raise ValueError(f"at most {limit} characters")
        return value

    return AfterValidator(check)


def _schema(schema: dict[str, Any]) -> None:
    # pydantic marks SecretStr writeOnly, but GET returns the field (masked): a schema that says
    # otherwise fails response validation. Its default would print as pydantic's mask, not ours.
    schema.pop("writeOnly", None)
    schema.pop("default", None)


_SERIALIZE = PlainSerializer(_dump, when_used="json")

# The device's stored lengths (reference rest-api.md 4.1/4.2); JSON strings only, as ArduinoJson.
Password = Annotated[SecretStr, Field(strict=True, json_schema_extra=_schema), _max_length(63), _SERIALIZE]
Token = Annotated[SecretStr, Field(strict=True, json_schema_extra=_schema), _max_length(127), _SERIALIZE]


def secret_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """Names of the model's secret fields (derived from the types: no second list to maintain)."""
    return tuple(name for name, f in model.model_fields.items() if f.annotation is SecretStr)


def unmask(doc: dict[str, Any], stored: BaseModel) -> dict[str, Any]:
    """`doc` with every secret that equals `PLACEHOLDER` replaced by the stored secret."""
    out = dict(doc)
    for name in secret_fields(type(stored)):
        if out.get(name) == PLACEHOLDER:
            out[name] = getattr(stored, name)
    return out
