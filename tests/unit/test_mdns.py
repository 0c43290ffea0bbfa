"""mDNS without a network: TXT records, names, the port-80 notice, address choice, settings, output."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from homemeter import __version__
from homemeter.config.mdns import MdnsConfig
from homemeter.integrations.mdns.addresses import select
from homemeter.integrations.mdns.discover import Found, describe
from homemeter.integrations.mdns.records import (
    HTTP_TYPE,
    MODBUS_TYPE,
    home_assistant_notice,
    http_service,
    modbus_service,
    numbered,
)

DEVICE = "0a1b2c3d4e5f"


def test_http_txt_has_the_devices_keys_with_home_assistants_vendor() -> None:
    spec = http_service(8080, DEVICE, MdnsConfig().vendor)
    assert (spec.type, spec.port) == (HTTP_TYPE, 8080)
    assert dict(spec.txt) == {
        "device_id": DEVICE, "vendor": "EnergyMe", "model": "homemeter", "version": __version__,
        "path": "/", "auth": "required", "ssl": "false",
    }  # fmt: skip


def test_modbus_txt_has_the_real_channel_count() -> None:
    spec = modbus_service(502, DEVICE, "homemeter", 17)
    assert (spec.type, spec.port) == (MODBUS_TYPE, 502)
    assert dict(spec.txt) == {
        "device_id": DEVICE, "vendor": "homemeter", "model": "homemeter", "version": __version__,
        "channels": "17",
    }  # fmt: skip


@pytest.mark.parametrize("vendor", ["EnergyMe", "energyme", "ENERGYME"])
def test_home_assistant_notice_when_http_is_not_on_port_80(vendor: str) -> None:
    notice = home_assistant_notice(8080, vendor)
    assert notice is not None and "8080" in notice and "port 80" in notice


def test_no_notice_on_port_80_or_when_home_assistant_would_not_discover_it() -> None:
    assert home_assistant_notice(80, "EnergyMe") is None
    assert home_assistant_notice(8080, "homemeter") is None  # HA matches vendor energyme only


def test_numbered_alternatives_stay_valid_labels() -> None:
    assert [numbered("homemeter", n) for n in (1, 2, 3)] == ["homemeter", "homemeter-2", "homemeter-3"]
    long = "a" * 63
    assert numbered(long, 12) == "a" * 60 + "-12"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("homemeter.local", "homemeter.local"),
        ("Kitchen-Meter", "Kitchen-Meter.local"),
        ("m2.LOCAL", "m2.local"),
    ],
)
def test_hostname_is_one_label_under_local(given: str, stored: str) -> None:
    config = MdnsConfig(hostname=given)
    assert config.hostname == stored and config.label == stored.removesuffix(".local")


@pytest.mark.parametrize("bad", ["", "-meter", "meter-", "my_meter", "a.b.local", "a" * 64, "météo"])
def test_bad_hostnames_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError, match="hostname"):
        MdnsConfig(hostname=bad)


def test_vendor_must_be_printable_ascii_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="vendor"):
        MdnsConfig(vendor="Energy\nMe")
    with pytest.raises(ValidationError, match="port"):
        MdnsConfig.model_validate({"port": 80})
    assert MdnsConfig() == MdnsConfig(enabled=True, hostname="homemeter.local", vendor="EnergyMe")


def addr(address: str) -> SimpleNamespace:
    return SimpleNamespace(family=socket.AF_INET, address=address)


def stat(flags: str, up: bool = True) -> SimpleNamespace:
    return SimpleNamespace(isup=up, flags=flags)


LO = {"lo": [addr("127.0.0.1"), SimpleNamespace(family=socket.AF_INET6, address="::1")]}
LO_STAT = {"lo": stat("up,loopback,running")}
ETH = "up,broadcast,running,multicast"


def test_lan_addresses_win_over_link_local_and_loopback() -> None:
    addrs = {**LO, "eth0": [addr("192.168.1.20"), addr("169.254.7.7")], "wlan0": [addr("10.0.0.9")]}
    found = select("0.0.0.0", addrs, {**LO_STAT, "eth0": stat(ETH), "wlan0": stat(ETH)})
    assert found.addresses == ("10.0.0.9", "192.168.1.20") and found.multicast and found.problem is None
    assert found.sockets == ("10.0.0.9", "192.168.1.20")


def test_one_socket_address_per_interface() -> None:
    found = select("0.0.0.0", {"eth0": [addr("192.0.2.9"), addr("192.0.2.1")]}, {"eth0": stat(ETH)})
    assert found.addresses == ("192.0.2.1", "192.0.2.9") and found.sockets == ("192.0.2.1",)


def test_link_local_or_loopback_only_when_that_is_all_there_is() -> None:
    found = select("0.0.0.0", {**LO, "eth0": [addr("169.254.7.7")]}, {**LO_STAT, "eth0": stat(ETH)})
    assert found.addresses == ("169.254.7.7",) and found.multicast
    alone = select("0.0.0.0", LO, LO_STAT)
    assert alone.addresses == ("127.0.0.1",) and not alone.multicast
    assert alone.problem is not None and "multicast" in alone.problem


def test_down_or_non_multicast_interfaces() -> None:
    down = select("0.0.0.0", {**LO, "eth0": [addr("192.168.1.20")]}, {**LO_STAT, "eth0": stat(ETH, up=False)})
    assert down.addresses == ("127.0.0.1",)
    quiet = select("0.0.0.0", {"eth0": [addr("192.168.1.20")]}, {"eth0": stat("up,broadcast,running")})
    assert quiet.addresses == ("192.168.1.20",) and quiet.problem is not None
    nothing = select("0.0.0.0", {}, {})
    assert nothing.addresses == () and nothing.problem is not None and "no network address" in nothing.problem


def test_a_specific_bind_address_is_the_only_one_advertised() -> None:
    addrs = {**LO, "eth0": [addr("192.168.1.20")], "wlan0": [addr("10.0.0.9")]}
    stats = {**LO_STAT, "eth0": stat(ETH), "wlan0": stat(ETH)}
    assert select("10.0.0.9", addrs, stats).addresses == ("10.0.0.9",)
    assert select("127.0.0.1", addrs, stats).addresses == ("127.0.0.1",)  # HTTP answers nowhere else
    assert select("192.0.2.50", addrs, stats).addresses == ()  # not an address of this host


def test_discover_lists_each_host_with_its_addresses_ports_and_txt() -> None:
    txt = {"device_id": DEVICE, "vendor": "EnergyMe", "model": "Home"}
    device = [
        Found("http", "energyme._http._tcp.local.", "energyme.local.", ("192.0.2.7",), 80, txt),
        Found("modbus", "energyme._modbus._tcp.local.", "energyme.local.", ("192.0.2.7",), 502, txt),
    ]
    text = describe(device)
    assert text.splitlines()[0] == "energyme.local  192.0.2.7"
    assert "http   port 80" in text and "modbus port 502" in text and f"device_id={DEVICE}" in text
    assert all(f.ours for f in device)
    assert not Found("http", "printer._http._tcp.local.", "p.local.", (), 80, {"vendor": "HP"}).ours
