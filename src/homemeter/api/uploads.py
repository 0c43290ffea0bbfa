"""Reading one uploaded file from a multipart/form-data request, with a hard size cap.

The cap relies on Content-Length: the HTTP parser never delivers more body than declared, so
checking the header bounds what is read. A chunked upload (no length) is refused with 411.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from homemeter.api.responses import ApiError


def check_length(request: Request, limit: int) -> int:
    """The declared body length; 411 without one, 413 above `limit`."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise ApiError(411, "Content-Length header required for uploads")
    if int(declared) > limit:
        raise ApiError(413, f"Payload Too Large. Max: {limit}")
    return int(declared)


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


@asynccontextmanager
async def uploaded_file(request: Request, limit: int) -> AsyncIterator[UploadFile]:
    """The request's single file part (any field name, as the device); closed on exit."""
    check_length(request, limit)
    if not is_multipart(request):
        raise ApiError(400, "Expected a multipart/form-data upload with one file part")
    try:
        form = await request.form(max_files=1, max_fields=8)
    except MultiPartException as err:
        raise ApiError(400, f"Invalid multipart upload: {err.message}") from err
    try:
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise ApiError(400, "No file part in the multipart upload")
        yield files[0]
    finally:
        await form.close()
