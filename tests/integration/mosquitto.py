"""A real Mosquitto broker for tests, and a subscriber that records what it receives.

Each broker has its own configuration file in a temporary directory and listens on a free loopback
port; `start()` returns once the port accepts connections, `stop()` kills it (always, in `finally`).
Variants: a password file written with `mosquitto_passwd`, and TLS with a CA and server certificate
generated here with `cryptography`. The Debian system service is never used.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import queue
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.loopback import free_port, wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate it signed for 127.0.0.1/localhost, and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path  # signed nothing here: verification against it must fail


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey, ca: bool,
) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_key, server_key = _key(), _key(), _key()
    ca = _cert("homemeter test CA", ca_key, None, ca_key, ca=True)
    other = _cert("some other CA", other_key, None, other_key, ca=True)
    server = _cert("localhost", server_key, ca, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths = Certificates(
        directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "other-ca.pem"
    )
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.other_ca.write_bytes(other.public_bytes(pem))
    paths.server_cert.write_bytes(server.public_bytes(pem))
    paths.server_key.write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass
class Broker:
    """One Mosquitto process on 127.0.0.1:`port` with its own configuration file."""

    directory: Path
    port: int
    tls: Certificates | None = None
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            f"log_dest file {self.directory / 'mosquitto.log'}",
            "log_type all",
            # As root, Mosquitto would switch to the `mosquitto` user, who cannot read our temp files.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        ]
        if self.users:
            passwords = self.directory / "passwords"
            passwords.unlink(missing_ok=True)
            for user, password in self.users.items():
                create = ["-c"] if not passwords.exists() else []
                subprocess.run(
                    [MOSQUITTO_PASSWD, *create, "-b", str(passwords), user, password],
                    check=True, capture_output=True,
                )  # fmt: skip
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
            ]
        path = self.directory / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self._config())], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_until(self._accepts, timeout=10, what=f"mosquitto on port {self.port}")

    def _accepts(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            err = self.process.stderr.read().decode() if self.process.stderr else ""
            raise AssertionError(f"mosquitto exited {self.process.returncode}: {err}{self.log}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None


@contextmanager
def mosquitto(directory: Path, *, tls: bool = False, users: dict[str, str] | None = None) -> Iterator[Broker]:
    """A started broker, killed when the block ends (also on failure)."""
    directory.mkdir(parents=True, exist_ok=True)
    broker = Broker(directory, free_port(), make_certificates(directory / "certs") if tls else None,
                    dict(users or {}))  # fmt: skip
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: float  # time.monotonic() on arrival


class Subscriber:
    """A paho client in its own thread that queues every message on the subscribed topics."""

    def __init__(
        self, broker: Broker, *topics: str, ca: Path | None = None, auth: tuple[str, str] | None = None
    ) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{free_port()}")
        if ca is not None:
            self._client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        if auth is not None:
            self._client.username_pw_set(*auth)
        self._client.on_message = self._on_message
        subscribed = queue.Queue[int]()
        self._client.on_subscribe = lambda c, u, mid, rc, p: subscribed.put(mid)
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()
        for topic in topics:
            # QoS 1 asked: a message delivered with QoS 0 was published with QoS 0.
            self._client.subscribe(topic, qos=1)
            subscribed.get(timeout=5)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        received = Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), time.monotonic())
        self.messages.put(received)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def get(self, topic: str | None = None, timeout: float = 10.0) -> Received:
        """The next message (on `topic`, others are dropped); AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.messages.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no message on {topic or 'any topic'} within {timeout} s") from None
            if topic is None or message.topic == topic:
                return message

    def drain(self) -> None:
        while not self.messages.empty():
            self.messages.get_nowait()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
