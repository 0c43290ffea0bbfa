"""The login: user `admin` and the Digest HA1 hashes of its password; the password is never stored.

HA1 = H(username:realm:password) is all a Digest server needs (RFC 7616 3.4.2), so the file holds
one HA1 per algorithm we accept and nothing that reveals the password directly. HA1 is still
password-equivalent for Digest, hence mode 0600 and an atomic replace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from homemeter.errors import ConfigError, StoreCorrupted, StoreError
from homemeter.store.atomic import write_atomic

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.json"
USERNAME = "admin"  # fixed, like the device
REALM = "homemeter"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 64  # the device's upper bound
FILE_MODE = 0o600
_FORMAT_VERSION = 1

# RFC 7616 algorithm names -> hash; MD5 first: it is what every client of the device speaks.
HASHES = MappingProxyType({"MD5": hashlib.md5, "SHA-256": hashlib.sha256})
_HEX_LENGTH = MappingProxyType({"MD5": 32, "SHA-256": 64})
_LOWER_HEX = frozenset("0123456789abcdef")


def compute_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 as RFC 7616 defines it, UTF-8 encoded (what requests, httpx and curl send)."""
    return HASHES[algorithm](f"{username}:{realm}:{password}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who may log in: username, realm and the precomputed HA1 hex per algorithm name."""

    username: str
    realm: str
    ha1: Mapping[str, str]

    @classmethod
    def from_password(cls, password: str, *, username: str = USERNAME, realm: str = REALM) -> Credentials:
        """Hash once here so the request path never touches the password."""
        ha1 = {alg: compute_ha1(alg, username, realm, password) for alg in HASHES}
        return cls(username, realm, MappingProxyType(ha1))


def generate_password() -> str:
    """A random first-start password: 16 URL-safe characters (96 bits), easy to copy from a log."""
    return secrets.token_urlsafe(12)


def check_password_rule(password: str) -> None:
    """Raise ConfigError unless the password has 8 to 64 characters (the only rule)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ConfigError(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long, "
            f"got {len(password)}"
        )


class CredentialStore:
    """Reads and atomically replaces the credentials file; caches what it read or wrote last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._current: Credentials | None = None
        self.mode_fixed_from: int | None = None  # the too-open mode found and corrected, if any

    def load(self) -> Credentials | None:
        """The stored credentials, or None when no password was set yet."""
        try:
            raw = self.path.read_bytes()
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreError(f"cannot read {self.path}: {err.strerror}") from err
        if mode & 0o077:
            # A copied or restored file may have lost its mode; HA1 is password-equivalent.
            log.warning("credentials file %s had mode %o, restricting to 0600", self.path, mode)
            os.chmod(self.path, FILE_MODE)
            self.mode_fixed_from = mode
        self._current = _decode(raw, self.path)
        return self._current

    def set_password(self, password: str) -> Credentials:
        """Validate, hash and store a new password; it applies to the next request."""
        check_password_rule(password)
        creds = Credentials.from_password(password)
        doc = {
            "version": _FORMAT_VERSION,
            "username": creds.username,
            "realm": creds.realm,
            "ha1": dict(creds.ha1),
        }
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(doc, indent=2).encode() + b"\n", mode=FILE_MODE)
        except OSError as err:
            raise StoreError(f"cannot write {self.path}: {err.strerror}") from err
        self._current = creds
        return creds

    def check_password(self, password: str) -> bool:
        """True if `password` is the stored one; compares HA1 in constant time."""
        creds = self._current or self.load()
        if creds is None:
            return False
        stored = creds.ha1["MD5"]
        given = compute_ha1("MD5", creds.username, creds.realm, password)
        return hmac.compare_digest(given, stored)

    def current(self) -> Credentials:
        """The credentials in force, without file I/O once loaded: the middleware calls this."""
        creds = self._current or self.load()
        if creds is None:
            raise StoreError(f"no credentials in {self.path}; set a password first")
        return creds

    def load_or_create(self) -> tuple[Credentials, str | None]:
        """Load, or on first start store a generated password and return it (shown once)."""
        creds = self.load()
        if creds is not None:
            return creds, None
        password = generate_password()
        return self.set_password(password), password


def _decode(raw: bytes, path: Path) -> Credentials:
    """Parse and check the file; a damaged file is an error, never silently replaced."""
    try:
        doc: Any = json.loads(raw)
        username, realm, ha1 = doc["username"], doc["realm"], doc["ha1"]
    except (ValueError, TypeError, KeyError) as err:
        raise StoreCorrupted(f"{path} is not a valid credentials file") from err
    ok = (
        isinstance(username, str)
        and isinstance(realm, str)
        and isinstance(ha1, dict)
        and set(ha1) == set(HASHES)
        and all(_is_hex(ha1[alg], _HEX_LENGTH[alg]) for alg in HASHES)
    )
    if not ok:
        raise StoreCorrupted(f"{path} is not a valid credentials file")
    return Credentials(username, realm, MappingProxyType(dict(ha1)))


def _is_hex(value: object, length: int) -> bool:
    # Not int(value, 16): that also takes "0x", "_" and spaces.
    return isinstance(value, str) and len(value) == length and set(value) <= _LOWER_HEX
