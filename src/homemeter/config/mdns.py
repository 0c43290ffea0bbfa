"""mDNS / DNS-SD advertisement settings: the `mdns` section of the configuration file and REST body.

The device always calls itself `energyme.local` and sends TXT `vendor=EnergyMe` (reference
integrations.md 4). Home Assistant's integration discovers `_http._tcp` services whose `vendor`
lower-cases to `energyme` (5), so that is the default vendor here; the host name defaults to
`homemeter.local` so a homemeter and a real device on one network do not fight over one name.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

#: One DNS label (RFC 1123): letters, digits and inner hyphens, at most 63 characters.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
DOMAIN = ".local"
#: The vendor Home Assistant's EnergyMe integration matches (case-insensitively).
HOME_ASSISTANT_VENDOR = "EnergyMe"


class MdnsConfig(BaseModel):
    """Whether and under which name the web interface and the Modbus server are advertised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = Field(True, description="advertise over mDNS (--no-mdns overrides at start)")
    hostname: StrictStr = Field(
        "homemeter.local",
        min_length=1,
        max_length=69,
        description="mDNS host name, `<name>.local`; a name taken on the network gets `-2`, `-3`...",
    )
    vendor: StrictStr = Field(
        HOME_ASSISTANT_VENDOR,
        min_length=1,
        max_length=63,
        description="TXT `vendor`; Home Assistant discovers the device only with `EnergyMe`",
    )

    @field_validator("hostname")
    @classmethod
    def _local_name(cls, hostname: str) -> str:
        # Checked here so a typo is a 400 naming the field, not a name zeroconf refuses later.
        label = hostname[: -len(DOMAIN)] if hostname.lower().endswith(DOMAIN) else hostname
        if not _LABEL.fullmatch(label):
            raise ValueError(
                "one DNS label (letters, digits and inner hyphens, at most 63), optionally "
                "followed by .local, such as homemeter or homemeter.local"
            )
        return label + DOMAIN

    @field_validator("vendor")
    @classmethod
    def _txt_value(cls, vendor: str) -> str:
        if not vendor.isprintable() or not vendor.isascii():
            raise ValueError("printable ASCII characters only")
        return vendor

    @property
    def label(self) -> str:
        """The host name without `.local`: also the services' instance name, as on the device."""
        return self.hostname[: -len(DOMAIN)]
