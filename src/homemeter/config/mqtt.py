"""Custom MQTT settings: the `mqtt` section of the configuration file and the REST body.

The first nine fields are the device's `custom-mqtt/config` object (reference rest-api.md 4.1, note
the lowercase `clientid`), with its defaults except one: the device's default broker is the public
`test.mosquitto.org`, so enabling it unchanged would publish a household's consumption to the
internet; here the default server is empty and `enabled` cannot be true without one. Validation is
stricter where the device accepts values that cannot work (integrations.md 6.2.7): port 0, an empty
topic or one with wildcards; over-long strings are refused with the limit instead of truncated.

The fields after them are homemeter's own (TLS, Home Assistant discovery), marked as extensions
(`extension.py`): the device's clients do not know them, so a PUT without them keeps their stored
values.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from homemeter.config.extension import EXTENSION
from homemeter.config.secrets import Password

Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
#: A file on the homemeter host, given as an absolute path (checked when the setting is applied).
FilePath = Annotated[StrictStr, Field(max_length=4096)]


#: Host name labels of 1..63 letters, digits, hyphens (underscores too: common on home networks).
_HOST = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]"
                   r"([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?")  # fmt: skip


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class MqttConfig(BaseModel):
    """Where and how often the meter-values array is published (QoS 0, not retained)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = False
    server: StrictStr = Field(
        "", max_length=255, description="broker host name or address; required when enabled (no default)"
    )
    port: Port = Field(1883, description="broker TCP port (1883 plain MQTT, usually 8883 with TLS)")
    clientid: StrictStr = Field(
        "energyme-home", max_length=63, description="MQTT client id; empty: the device id"
    )
    topic: StrictStr = Field(
        "energyme",
        min_length=1,
        max_length=127,
        description="topic of the meter-values array; Home Assistant state and availability topics "
        "are below it (`<topic>/channel/<index>`, `<topic>/grid`, `<topic>/availability`)",
    )
    frequency: int = Field(
        15, strict=True, ge=0, le=86_400, description="seconds between publishes; 0: every second"
    )
    useCredentials: StrictBool = Field(False, description="send username and password")
    username: StrictStr = Field("username", max_length=63)
    password: Password = Field(SecretStr("password"), description="never returned in clear")
    # ---- homemeter's own fields (ignored by the device's clients)
    useTls: StrictBool = Field(
        False, description="connect with TLS (mqtts); the broker's certificate is verified unless "
        "`verifyCertificate` is false",
        json_schema_extra=EXTENSION,
    )  # fmt: skip
    caFile: FilePath = Field(
        "", description="with TLS: absolute path of a PEM file with the CA(s) that signed the broker's "
        "certificate; empty: the system's trusted CAs",
        json_schema_extra=EXTENSION,
    )  # fmt: skip
    certFile: FilePath = Field(
        "", description="with TLS: absolute path of a PEM client certificate, for brokers that ask "
        "for one; empty: none",
        json_schema_extra=EXTENSION,
    )  # fmt: skip
    keyFile: FilePath = Field(
        "", description="absolute path of the PEM private key of `certFile` (unencrypted); empty: the "
        "key is in `certFile`",
        json_schema_extra=EXTENSION,
    )  # fmt: skip
    verifyCertificate: StrictBool = Field(
        True, description="with TLS: refuse a broker whose certificate does not verify against the CAs "
        "or does not match `server`; false accepts any certificate (encrypted, not authenticated)",
        json_schema_extra=EXTENSION,
    )  # fmt: skip
    haDiscovery: StrictBool = Field(
        True, description="announce the meter to Home Assistant (MQTT discovery, one device with a "
        "sensor per quantity and active channel); false removes the announced device",
        json_schema_extra=EXTENSION,
    )  # fmt: skip
    haDiscoveryPrefix: StrictStr = Field(
        "homeassistant", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_\-/]+$",
        description="Home Assistant's discovery prefix (its MQTT integration setting)",
        json_schema_extra=EXTENSION,
    )  # fmt: skip

    @field_validator("topic")
    @classmethod
    def _publishable(cls, topic: str) -> str:
        # MQTT 3.1.1 4.7.1: wildcards are for subscriptions only; a PUBLISH to them is a protocol error.
        if "+" in topic or "#" in topic or "\0" in topic:
            raise ValueError("must not contain the wildcards '+' or '#' (or NUL)")
        return topic

    @field_validator("server")
    @classmethod
    def _host(cls, server: str) -> str:
        # A URL or a typo here would only show up later as a puzzling connection failure.
        if server and not (_HOST.fullmatch(server) or _is_ip(server)):
            raise ValueError("must be a host name or an IP address (no scheme, port or spaces)")
        return server

    @field_validator("caFile", "certFile", "keyFile")
    @classmethod
    def _absolute(cls, path: str) -> str:
        # The service's working directory is not the user's: a relative path would be a surprise.
        if path and not posixpath.isabs(path):
            raise ValueError("must be an absolute path")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[str, str]] = []
        if self.enabled and not self.server.strip():
            problems.append(("server", "required when enabled is true (there is no default broker)"))
        if self.keyFile and not self.certFile:
            problems.append(("keyFile", "needs certFile (the key of which client certificate?)"))
        if problems:
            # Raised with the field's location, so the API's 400 names `server`, not the whole body.
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("mqtt_settings", message),
                        loc=(field,),
                        input=getattr(self, field),
                    )
                    for field, message in problems
                ],
            )
        return self
