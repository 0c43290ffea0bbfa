"""The baseline: a bare Starlette JSON endpoint serving fixed bytes, no auth, no middleware.

bench/http.py runs it under uvicorn (uvloop, httptools, no access log) with the body homemeter
served at the start of the run, so both peers send the same bytes. Path: BARE_PATH, file: BARE_BODY.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = Path(os.environ["BARE_BODY"]).read_bytes()


async def meter_values(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route(os.environ["BARE_PATH"], meter_values, methods=["GET"])])
