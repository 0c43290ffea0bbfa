"""The broker connection: an aiomqtt client built from the settings, and why a connection failed.

aiomqtt (over paho-mqtt) does the MQTT framing; its connect runs in a worker thread, so a slow DNS
lookup, TCP connect or TLS handshake never holds the event loop (sampling, the API, Modbus). Its
errors are turned into the device's status reasons (integrations.md 2.6), each followed by what
actually happened, so a wrong host, a refused connection, bad credentials, a lost connection and a
certificate that does not verify each read differently.
"""

from __future__ import annotations

import socket
import ssl

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from homemeter.config.mqtt import MqttConfig
from homemeter.errors import HomemeterError

KEEPALIVE_S = 15  # the device's (PubSubClient default)
CONNACK_TIMEOUT_S = 15  # the device's socket/CONNACK timeout
BACKOFF_FIRST_S = 5.0  # after the first failed attempt; doubles per failure
BACKOFF_CAP_S = 60.0  # the device caps at 1 h: a broker back after a reboot waits at most a minute here

# CONNACK codes as paho reports them (MQTT 5 reason codes; 3.1.1 codes 1-5 are mapped onto these).
_REFUSALS = {
    132: ("MQTT_CONNECT_BAD_PROTOCOL", "the broker does not speak MQTT 3.1.1"),
    133: ("MQTT_CONNECT_BAD_CLIENT_ID", "the broker refused the client id"),
    134: ("MQTT_CONNECT_BAD_CREDENTIALS", "the broker rejected the username or password"),
    135: ("MQTT_CONNECT_UNAUTHORIZED", "the broker refused the login (wrong username or password, "
          "or credentials required)"),
    136: ("MQTT_CONNECT_UNAVAILABLE", "the broker is unavailable"),
}  # fmt: skip


class TlsSettingsError(HomemeterError):
    """A TLS file named in the settings cannot be used; `field` is the setting to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def tls_context(cfg: MqttConfig) -> ssl.SSLContext:
    """The TLS context of the settings (reads files: call it off the event loop)."""
    try:
        context = ssl.create_default_context(cafile=cfg.caFile or None)
    except (OSError, ssl.SSLError) as err:
        raise TlsSettingsError("caFile", f"cannot use {cfg.caFile}: {_strerror(err)}") from err
    if cfg.certFile:
        try:
            context.load_cert_chain(cfg.certFile, cfg.keyFile or None)
        except (OSError, ssl.SSLError) as err:
            field = "keyFile" if cfg.keyFile and "key" in _strerror(err).lower() else "certFile"
            raise TlsSettingsError(field, f"cannot use {cfg.certFile}: {_strerror(err)}") from err
    if not cfg.verifyCertificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def client(
    cfg: MqttConfig, device_id: str, will_topic: str, will: bytes, tls: ssl.SSLContext | None
) -> aiomqtt.Client:
    """A client for one connection attempt (MQTT 3.1.1, clean session, as the device)."""
    return aiomqtt.Client(
        cfg.server,
        cfg.port,
        identifier=cfg.clientid or device_id,
        # As the device: credentials only with useCredentials; the password flag even if it is empty.
        username=cfg.username if cfg.useCredentials else None,
        password=cfg.password.get_secret_value() if cfg.useCredentials else None,
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=True,
        keepalive=KEEPALIVE_S,
        timeout=CONNACK_TIMEOUT_S,
        will=aiomqtt.Will(will_topic, will, qos=1, retain=True),
        tls_context=tls,
    )


def backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` consecutive failed attempts (>= 1)."""
    return min(BACKOFF_FIRST_S * float(2 ** min(failures - 1, 16)), BACKOFF_CAP_S)


def connect_failure(err: BaseException, cfg: MqttConfig) -> str:
    """The status reason of a failed connection attempt: the device's code, then what happened."""
    if isinstance(err, TlsSettingsError):
        return f"MQTT_CONNECT_FAILED: {err}"
    if isinstance(err, aiomqtt.MqttCodeError) and isinstance(err.rc, ReasonCode):
        code, text = _REFUSALS.get(err.rc.value, ("MQTT_CONNECT_FAILED", f"refused: {err.rc}"))
        return f"{code}: {text}"
    cause = _os_error(err)
    where = f"{cfg.server}:{cfg.port}"
    if isinstance(cause, socket.gaierror):
        return f"MQTT_CONNECT_FAILED: unknown host {cfg.server!r} ({cause.strerror})"
    if isinstance(cause, ConnectionRefusedError):
        return f"MQTT_CONNECT_FAILED: connection refused by {where} (no broker listening)"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"MQTT_CONNECT_FAILED: TLS certificate of {where} not trusted ({_strerror(cause)})"
    if isinstance(cause, ssl.SSLError):
        return f"MQTT_CONNECT_FAILED: TLS handshake with {where} failed ({_strerror(cause)})"
    if isinstance(cause, TimeoutError) or "timed out" in str(err):
        return f"MQTT_CONNECTION_TIMEOUT: no answer from {where} within {CONNACK_TIMEOUT_S} s"
    if cause is not None:
        return f"MQTT_CONNECT_FAILED: {where}: {_strerror(cause)}"
    return f"MQTT_CONNECT_FAILED: {where}: {err}"


def connection_lost(err: BaseException) -> str:
    """The status reason when an established connection dropped."""
    cause = _os_error(err)
    detail = _strerror(cause) if cause is not None else str(err)
    return f"MQTT_CONNECTION_LOST: {detail}"


def _os_error(err: BaseException) -> OSError | None:
    """The OSError behind an aiomqtt error (it re-raises them as `MqttError(str(exc)) from None`)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _strerror(err: BaseException) -> str:
    if isinstance(err, ssl.SSLCertVerificationError) and err.verify_message:
        return f"certificate verify failed: {err.verify_message}"
    if isinstance(err, ssl.SSLError) and err.reason:
        return str(err.reason).replace("_", " ").lower()
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)
