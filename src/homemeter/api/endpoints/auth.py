"""`/auth/*`: login status and password changes. Passwords are never logged, stored or echoed."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from homemeter.api.responses import ApiError, JSONBytes, read_json, success
from homemeter.api.routing import Endpoint
from homemeter.api.services import Services
from homemeter.errors import ConfigError, StoreError
from homemeter.store.credentials import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, USERNAME

log = logging.getLogger(__name__)

TAG = "Authentication"


class AuthStatus(BaseModel):
    usingDefaultPassword: bool
    username: str


class ChangePassword(BaseModel):
    currentPassword: str
    newPassword: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


def endpoints(svc: Services) -> list[Endpoint]:
    store = svc.credential_store

    async def status(request: Request) -> Response:
        # There is no built-in default: the first password is generated or chosen by the user.
        return JSONBytes({"usingDefaultPassword": False, "username": USERNAME})

    async def change_password(request: Request) -> Response:
        doc = await read_json(request, 256)
        current = doc.get("currentPassword") if isinstance(doc, dict) else None
        new = doc.get("newPassword") if isinstance(doc, dict) else None
        # Not `validate()`: pydantic's messages would quote the rejected input, i.e. the password.
        if not isinstance(current, str) or not isinstance(new, str):
            raise ApiError(400, "Missing currentPassword or newPassword")
        if not store.check_password(current):
            raise ApiError(401, "Current password is incorrect")
        try:
            await asyncio.to_thread(store.set_password, new)
        except ConfigError as err:  # the length rule; the message states lengths only
            raise ApiError(400, f"New password does not meet requirements: {err}") from err
        except StoreError as err:
            raise ApiError(500, f"New password could not be saved: {err}") from err
        log.info("admin password changed through the API")
        return success("Password changed successfully")

    async def reset_password(request: Request) -> Response:
        raise ApiError(
            501,
            "homemeter has no default password to reset to. Change it with "
            "POST /api/v1/auth/change-password, or on the host run 'homemeter passwd'",
        )

    E = Endpoint
    return [
        E("GET", "/auth/status", status, "Login status", TAG, response=AuthStatus),
        E(
            "POST",
            "/auth/change-password",
            change_password,
            "Change the admin password",
            TAG,
            body=ChangePassword,
            errors=(400, 401, 413, 500),
            description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters (the device "
            "allows 4). The next request must use the new password. 401 here means the current "
            "password was wrong (no challenge header).",
        ),
        E(
            "POST",
            "/auth/reset-password",
            reset_password,
            "Reset to the default password (not available)",
            TAG,
            errors=(501,),
            description="The device resets to its built-in password; homemeter has none. Use "
            "change-password, or 'homemeter passwd' on the host.",
        ),
    ]
