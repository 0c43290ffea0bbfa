"""`GET /metrics` (Prometheus) settings: the `metrics` section of the configuration file and REST body.

Not a device feature. Prometheus cannot answer a Digest challenge, so `/metrics` may instead take a
bearer token or Basic credentials, or no authentication on a trusted network. Whatever is chosen
applies to `/metrics` only: every other path keeps Digest.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from homemeter.config.secrets import Password, Token

# Guessing is slowed by the failed-login limiter (5 a minute per address); these lengths make it hopeless.
MIN_TOKEN_LENGTH = 16
MIN_PASSWORD_LENGTH = 8  # the admin password's rule
_VISIBLE_ASCII = frozenset(map(chr, range(0x21, 0x7F)))


class MetricsAuth(StrEnum):
    """How `GET /metrics` is authenticated."""

    DIGEST = "digest"  # like every endpoint (Prometheus cannot do it: for scrapers behind a proxy)
    BEARER = "bearer"  # Authorization: Bearer <token> (prometheus.yml `authorization`)
    BASIC = "basic"  # Authorization: Basic (prometheus.yml `basic_auth`)
    NONE = "none"  # anyone who reaches the port may read the metrics


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    auth: MetricsAuth = Field(
        MetricsAuth.DIGEST, description="digest (default), bearer, basic or none; for /metrics only"
    )
    token: Token = Field(
        SecretStr(""), description=f"bearer token (at least {MIN_TOKEN_LENGTH} characters); never returned"
    )
    username: StrictStr = Field("prometheus", min_length=1, max_length=63, description="Basic auth user")
    password: Password = Field(
        SecretStr(""),
        description=f"Basic auth password (at least {MIN_PASSWORD_LENGTH} characters); never returned",
    )

    @model_validator(mode="after")
    def _credentials_for_the_mode(self) -> Self:
        # Checked only for the mode in use: switching back to digest keeps a stored token for later.
        token = self.token.get_secret_value()
        if self.auth is MetricsAuth.BEARER and len(token) < MIN_TOKEN_LENGTH:
            _refuse(f"token: auth 'bearer' needs a token of at least {MIN_TOKEN_LENGTH} characters")
        if not _VISIBLE_ASCII.issuperset(token):
            _refuse("token: only visible ASCII characters, no spaces (it travels in an HTTP header)")
        if self.auth is MetricsAuth.BASIC:
            if len(self.password.get_secret_value()) < MIN_PASSWORD_LENGTH:
                _refuse(f"password: auth 'basic' needs at least {MIN_PASSWORD_LENGTH} characters")
            if ":" in self.username:
                _refuse("username: must not contain ':' (Basic auth separates user and password with it)")
        return self


def _refuse(message: str) -> None:
    # A custom error type: pydantic would prefix a ValueError's message with "Value error, ".
    raise PydanticCustomError("metrics_credentials", message)
