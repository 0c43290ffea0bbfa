"""`<section>/config`: GET, PUT and PATCH of one configuration section, one behaviour for all.

PUT replaces the section: every field is required, except homemeter's own (x-extension) fields,
which keep their stored value when left out, so the device's clients can send only its fields.
PATCH changes the fields given (nested objects merged key by key). Both validate the whole section
(400 naming the field) and go through `ConfigService.update`: applied live to every component and
stored, or refused with 409 and nothing changed. Secrets read as `PLACEHOLDER`; sending that back
keeps the stored one. The device's own sections ignore unknown keys, as the device does (reference
rest-api.md 0.4: its older web pages send extra ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import ApiError, JSONBytes, merge, read_json, require_fields, success, validate
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.config.extension import extension_fields
from homemeter.config.secrets import PLACEHOLDER, secret_fields, unmask


@dataclass(frozen=True)
class ConfigSection:
    """One section of `AppConfig` and how its endpoints word it."""

    key: str  # AppConfig field
    path: str  # URL prefix below /api/v1, e.g. "/modbus"
    title: str  # the device's wording: "<title> configuration updated successfully"
    subject: str  # summaries: "<subject> settings", "Replace the <subject> settings"
    model: type[BaseModel]
    limit: int  # request body bytes
    tag: str
    applies: str = ""  # how a change takes effect, added to the PUT and PATCH descriptions
    errors: tuple[int, ...] = (400, 413)
    device: bool = False  # a section of the device's API: unknown keys are ignored


def config_endpoints(svc: Services, section: ConfigSection) -> list[Endpoint]:
    """GET, PUT and PATCH `<path>/config` for `section`."""

    def stored() -> BaseModel:
        current: BaseModel = getattr(svc.config.current, section.key)
        return current

    async def body(request: Request) -> dict[str, Any]:
        doc = await read_json(request, section.limit)
        if not isinstance(doc, dict):
            raise ApiError(400, "body: expected a JSON object")
        if section.device:
            doc = {k: v for k, v in doc.items() if k in section.model.model_fields}
        return doc

    async def save(doc: dict[str, Any]) -> Response:
        try:
            new = validate(section.model, unmask(doc, stored()))
        except ApiError as err:
            if not section.device:
                raise
            # The device's words first ("Invalid ... configuration"), then the field.
            raise ApiError(400, f"Invalid {section.title} configuration: {err.message}") from err
        await svc.config.update(**{section.key: new})
        return success(f"{section.title} configuration updated successfully")

    async def get_config(request: Request) -> Response:
        return JSONBytes(stored().model_dump(mode="json"))

    async def put_config(request: Request) -> Response:
        doc = await body(request)
        doc = {name: getattr(stored(), name) for name in extension_fields(section.model)} | doc
        require_fields(doc, section.model)
        return await save(doc)

    async def patch_config(request: Request) -> Response:
        doc = await body(request)
        if not doc:
            fields = ", ".join(section.model.model_fields)
            raise ApiError(400, f"body: no field to change; recognised fields: {fields}")
        # Python mode: stored secrets stay SecretStr in the merge, so an untouched one is kept.
        return await save(merge(stored().model_dump(), doc))

    masked, optional, applies = _wording(section)
    config, s, tag = f"{section.path}/config", section.subject, section.tag
    E = Endpoint
    return [
        E("GET", config, get_config, f"{s} settings", tag, response=section.model,
          description=masked.strip()),
        E("PUT", config, put_config, f"Replace the {s} settings", tag, body=section.model,
          errors=section.errors, description=f"Every field is required{optional}.{applies}{masked}"),
        E("PATCH", config, patch_config, f"Change some {s} settings", tag, body=dict[str, Any],
          errors=section.errors, description=f"As PUT, for the fields given.{applies}{masked}"),
    ]  # fmt: skip


def _wording(section: ConfigSection) -> tuple[str, str, str]:
    """What the descriptions add for secrets, x-extension fields and how a change applies."""
    masked = ""
    if secret_fields(section.model):
        masked = f' Secrets read as {PLACEHOLDER!r} (empty ones as ""); send that back to keep them.'
    optional = ""
    if extension_fields(section.model):
        optional = ", except those marked x-extension (homemeter's own: left out, they keep the stored value)"
    return masked, optional, f" {section.applies}" if section.applies else ""
