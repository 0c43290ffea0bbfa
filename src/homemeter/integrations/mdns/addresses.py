"""Which of the host's addresses to advertise, and whether any of them can reach the network.

IPv4 only: the device has no IPv6, Home Assistant connects over IPv4, and one socket family keeps the
responder simple. Loopback and link-local (169.254/16) addresses are left out unless they are all
the host has: a client on the LAN cannot use them, but on a host with nothing else they are better
than nothing (a client on the same host, or one on the same link).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import psutil


class _Address(Protocol):  # psutil's snicaddr
    @property
    def family(self) -> int: ...
    @property
    def address(self) -> str: ...


class _Stats(Protocol):  # psutil's snicstats
    @property
    def isup(self) -> bool: ...
    @property
    def flags(self) -> str: ...


@dataclass(frozen=True, slots=True)
class HostAddresses:
    """The addresses to advertise (sorted) and whether one of their interfaces can multicast."""

    addresses: tuple[str, ...]
    multicast: bool  # a non-loopback interface with the MULTICAST flag carries one of them
    #: One of the addresses per interface: where the responder opens its sockets. zeroconf joins the
    #: multicast group per address, and a second address of one interface fails to join (EADDRINUSE).
    sockets: tuple[str, ...] = ()

    @property
    def problem(self) -> str | None:
        """Why advertising reaches no other host, for the status; None when it can."""
        if not self.addresses:
            return "no network address to advertise: no interface is up (or --bind names another address)"
        if not self.multicast:
            return (
                "no network interface with multicast: mDNS answers reach this host only "
                f"(addresses {', '.join(self.addresses)})"
            )
        return None


def _rank(ip: ipaddress.IPv4Address) -> int:
    """0 for a usable address, 1 for link-local, 2 for loopback: the lowest rank present wins."""
    if ip.is_loopback:
        return 2
    if ip.is_link_local:
        return 1
    return 0


def select(bind: str, addrs: Mapping[str, Sequence[_Address]], stats: Mapping[str, _Stats]) -> HostAddresses:
    """The addresses to advertise from `psutil.net_if_addrs()` and `psutil.net_if_stats()`.

    A specific `--bind` address limits them to that one: HTTP answers nowhere else.
    """
    found: dict[str, tuple[int, bool, str]] = {}  # address -> (rank, interface can multicast, interface)
    for iface, entries in addrs.items():
        stat = stats.get(iface)
        if stat is None or not stat.isup:
            continue
        flags = set(stat.flags.split(","))
        for entry in entries:
            if entry.family != socket.AF_INET:
                continue
            ip = ipaddress.IPv4Address(entry.address)
            multicast = "multicast" in flags and "loopback" not in flags
            found[str(ip)] = (_rank(ip), multicast, iface)
    if _specific(bind):
        found = {a: v for a, v in found.items() if a == bind}
    if not found:
        return HostAddresses((), False)
    best = min(rank for rank, _, _ in found.values())
    chosen = sorted((a for a, (rank, _, _) in found.items() if rank == best), key=ipaddress.IPv4Address)
    per_interface = {found[a][2]: a for a in reversed(chosen)}  # the lowest address of each
    return HostAddresses(
        tuple(chosen), any(found[a][1] for a in chosen), tuple(sorted(per_interface.values()))
    )


def _specific(bind: str) -> bool:
    try:
        ip = ipaddress.ip_address(bind)
    except ValueError:  # a host name: we cannot tell which interface it means
        return False
    return ip.version == 4 and not ip.is_unspecified


def current(bind: str) -> HostAddresses:
    """The host's addresses right now (a netlink dump: well under a millisecond)."""
    return select(bind, psutil.net_if_addrs(), psutil.net_if_stats())
