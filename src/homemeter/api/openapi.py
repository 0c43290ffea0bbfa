"""The OpenAPI 3.1 document, generated from the endpoint table and the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from homemeter.api.routing import Endpoint

REF = "#/components/schemas/{model}"
STATUS_TEXT = {
    200: "OK",
    204: "No content",
    304: "Not modified",
    400: "Invalid request: the error names the field",
    401: "Digest authentication required (challenge in WWW-Authenticate)",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    423: "Locked",
    429: "Too many failed logins (see Retry-After)",
    500: "Internal error",
    501: "Not available on a Linux service",
    503: "Not running",
    507: "Insufficient storage",
}


NO_BODY = frozenset({204, 304})
_PATH_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


class SuccessResponse(BaseModel):
    success: Literal[True] = True
    message: str


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: str


class _Schemas:
    """Collects `$defs` of every described type into components.schemas."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, tp: Any, mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        if isinstance(tp, dict):
            return tp
        schema = TypeAdapter(tp).json_schema(ref_template=REF, mode=mode)
        self.components.update(schema.pop("$defs", {}))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            self.components[tp.__name__] = schema
            return {"$ref": REF.format(model=tp.__name__)}
        return schema


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(e: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    ok_schema = schemas.of(e.response or SuccessResponse, "serialization")
    ok_content = (
        _json(ok_schema)
        if e.media_type == "application/json"
        else {e.media_type: {"schema": {"type": "string"}}}
    )
    error = {"description": "", "content": _json(schemas.of(ErrorResponse, "serialization"))}
    responses: dict[str, Any] = {"200": {"description": STATUS_TEXT[200], "content": ok_content}}
    statuses = (*e.errors, *(() if e.public else (401, 429)))
    for status in sorted(set(statuses)):
        text = STATUS_TEXT.get(status, "Error")
        # 204 and 304 carry no body by definition (RFC 9110 15.3.5, 15.4.5).
        responses[str(status)] = (
            {"description": text} if status in NO_BODY else {**error, "description": text}
        )
    op: dict[str, Any] = {
        "operationId": e.method.lower() + re.sub(r"\W", "_", _PATH_PARAM.sub("", e.path)),
        "summary": e.summary,
        "tags": [e.tag],
        "responses": responses,
    }
    if e.description:
        op["description"] = e.description
    if e.public:
        op["security"] = []
    path_params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(e.path)
    ]
    if e.query or path_params:
        op["parameters"] = path_params + [
            {
                "name": q.name,
                "in": "query",
                "required": q.required,
                "description": q.description,
                "schema": q.schema,
            }
            for q in e.query
        ]
    if e.body is not None:
        op["requestBody"] = {"required": True, "content": _json(schemas.of(e.body, "validation"))}
    return op


def openapi_document(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        # Starlette's `{name:path}` converter is `{name}` in an OpenAPI path template.
        url = _PATH_PARAM.sub(r"{\1}", e.url)
        paths.setdefault(url, {})[e.method.lower()] = _operation(e, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "homemeter REST API",
            "version": version,
            "description": "EnergyMe-Home compatible REST API of homemeter. Every endpoint except "
            "GET /api/v1/health needs HTTP Digest authentication (user admin).",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"digest": {"type": "http", "scheme": "digest"}},
        },
        "security": [{"digest": []}],
    }
