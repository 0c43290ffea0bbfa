"""Custom MQTT settings: the `mqtt` section of the configuration file and the REST body.

Field names, types and defaults are the device's `custom-mqtt/config` object (reference rest-api.md 4.1,
note the lowercase `clientid`). Validation is stricter where the device accepts values that cannot
work (integrations.md 6.2.7): port 0, frequency 0, an empty topic or one with wildcards. Over-long
strings are refused with the limit instead of silently truncated.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictStr, field_validator

from homemeter.config.secrets import Password

Port = Annotated[int, Field(strict=True, ge=1, le=65535)]


class MqttConfig(BaseModel):
    """Where and how often the meter-values array is published (QoS 0, not retained)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = False
    # The device's default is a public broker: enabling it unchanged publishes household data openly.
    server: StrictStr = Field("test.mosquitto.org", min_length=1, max_length=255, description="broker host")
    port: Port = Field(1883, description="broker TCP port (plain MQTT, no TLS)")
    clientid: StrictStr = Field(
        "energyme-home", max_length=63, description="MQTT client id; empty: the device id"
    )
    topic: StrictStr = Field("energyme", min_length=1, max_length=127, description="topic published to")
    frequency: int = Field(15, strict=True, ge=1, le=86_400, description="seconds between publishes")
    useCredentials: StrictBool = Field(False, description="send username and password")
    username: StrictStr = Field("username", max_length=63)
    password: Password = Field(SecretStr("password"), description="never returned in clear")

    @field_validator("topic")
    @classmethod
    def _publishable(cls, topic: str) -> str:
        # MQTT 3.1.1 4.7.1: wildcards are for subscriptions only; a PUBLISH to them is a protocol error.
        if "+" in topic or "#" in topic or "\0" in topic:
            raise ValueError("must not contain the wildcards '+' or '#' (or NUL)")
        return topic
