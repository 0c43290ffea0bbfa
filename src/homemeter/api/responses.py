"""The device's response envelopes and request-body reading with errors that name the field.

SuccessResponse `{"success": true, "message": ...}`; ErrorResponse `{"success": false, "error": ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from homemeter.config.app import describe

T = TypeVar("T")

#: The device's library-level limit for any JSON body.
MAX_JSON_BODY = 16_384


class ApiError(Exception):
    """Raised by handlers; rendered as an ErrorResponse with `status`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class JSONBytes(Response):
    """A JSON response from ready bytes or any orjson-serialisable value (no per-request encoder)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


def success(message: str, **extra: Any) -> JSONBytes:
    return JSONBytes({"success": True, "message": message, **extra})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONBytes:
    return JSONBytes({"success": False, "error": message}, status_code=status, headers=headers)


async def read_json(request: Request, limit: int | None = None) -> Any:
    """The parsed JSON body; 413 over the endpoint's limit, 400 when empty or not JSON."""
    max_len = min(limit or MAX_JSON_BODY, MAX_JSON_BODY)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_len:
        raise ApiError(413, f"Payload Too Large. Max: {max_len}")
    # Read as it arrives and stop past the limit: a chunked body (no Content-Length) could be
    # endless, and `request.body()` would hold all of it before the check.
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_len:
            raise ApiError(413, f"Payload Too Large. Max: {max_len}")
        parts.append(chunk)
    body = b"".join(parts)
    if not body.strip():
        raise ApiError(400, "Request body is empty: expected a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, f"Invalid JSON: {err}") from err


def validate(schema: type[T] | TypeAdapter[T], data: Any) -> T:
    """Validate `data` against a model or adapter; a 400 that names every bad field."""
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(data)
        assert issubclass(schema, BaseModel)
        return schema.model_validate(data)
    except ValidationError as err:
        raise ApiError(400, describe(err)) from err


def require_fields(data: Any, model: type[BaseModel], where: str = "") -> None:
    """PUT replaces a whole object: every field (nested ones too) must be present."""
    if not isinstance(data, dict):
        raise ApiError(400, f"{where or 'body'}: expected a JSON object")
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in data:
            raise ApiError(400, f"{where}{key}: field required (PUT replaces the whole object)")
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            require_fields(data[key], sub, f"{where}{key}.")


def merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH: nested dicts merged key by key, everything else replaced."""
    out = dict(current)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
