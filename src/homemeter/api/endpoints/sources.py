"""`/sources/*`: the remote meters homemeter reads (`--source config`) and how they are doing.

Not a device endpoint. The configuration is the `sources` section of `config.json`: the meters and
which meter channel each homemeter channel shows. A change applies live when homemeter runs on remote
meters (the new pollers are built first; a model file that cannot be read is a 409 and nothing
changes); with another `--source` it is stored for the next start with `--source config`. Passwords
read as `PLACEHOLDER`; sending that back for a meter of the same name keeps its stored password.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import JSONBytes, read_json, require_fields, success, validate
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.component import ComponentStatus, State
from homemeter.config.secrets import PLACEHOLDER
from homemeter.config.sources import SourcesConfig

TAG = "Sources"
BODY_LIMIT = 16_384  # a few meters and up to 17 channel mappings


def _unmask(doc: Any, stored: SourcesConfig) -> Any:
    """Each meter's `PLACEHOLDER` password replaced by the stored password of the meter so named."""
    if not isinstance(doc, dict) or not isinstance(doc.get("meters"), list):
        return doc
    known = {m.name: m.password for m in stored.meters}
    meters = [
        {**m, "password": known[m["name"]]}
        if isinstance(m, dict) and m.get("password") == PLACEHOLDER and m.get("name") in known
        else m
        for m in doc["meters"]
    ]
    return {**doc, "meters": meters}


def endpoints(svc: Services) -> list[Endpoint]:
    def stored() -> SourcesConfig:
        return svc.config.current.sources

    async def get_config(request: Request) -> Response:
        return JSONBytes(stored().model_dump(mode="json"))

    async def put_config(request: Request) -> Response:
        doc = await read_json(request, BODY_LIMIT)
        require_fields(doc, SourcesConfig)
        await svc.config.update(sources=validate(SourcesConfig, _unmask(doc, stored())))
        return success("Sources configuration updated successfully")

    async def get_status(request: Request) -> Response:
        status = svc.status("sources") or ComponentStatus(State.STOPPED, 0.0)
        return JSONBytes(status.to_json())

    masked = f'Passwords read as {PLACEHOLDER!r} (empty ones as ""); send that back to keep them.'
    E = Endpoint
    return [
        E("GET", "/sources/config", get_config, "Remote meters and the channel map", TAG,
          response=SourcesConfig,
          description="The meters (`energyme`: an EnergyMe-Home device at http://HOST[:PORT]; "
          "`modbus`: a Modbus TCP meter at modbus://HOST[:PORT][/UNIT] with a built-in `model` or a "
          f"`modelFile`) and, per homemeter channel, the meter and its channel it shows. {masked}"),
        E("PUT", "/sources/config", put_config, "Replace the remote meters and the channel map", TAG,
          body=SourcesConfig, errors=(400, 409, 413),
          description="Validated whole (unknown meters, a meter channel shown twice: 400). Applied "
          "live with --source config (a model file that cannot be read: 409, nothing changed); "
          f"otherwise stored for the next start. {masked}"),
        E("GET", "/sources/status", get_status, "How each remote meter is doing", TAG,
          response=dict[str, Any],
          description="The `sources` component's status: state (degraded while a meter is "
          "unreachable), the reason, counters (polls, failures, counterJumps) and per meter its URL, "
          "state, last error, last good poll and the homemeter channels it shows; `channels`: which "
          "meter channel each homemeter channel shows (as polled now)."),
    ]  # fmt: skip
