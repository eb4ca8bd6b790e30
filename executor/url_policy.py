"""Which URLs the server may call for a function's step.fetch and step.ai.infer.

Those URLs are chosen by the function, not by the operator: in production a function must not
reach the server's own network (cloud metadata at 169.254.169.254, the database, Redis, admin
ports on loopback). So a host that resolves to a private, loopback, link-local, multicast or
reserved address is refused, unless the operator lists its network in
INNGEST_GATEWAY_ALLOWED_NETWORKS. Dev mode allows everything: it runs on a developer's machine.

The check returns the address it approved, and the request connects to that address: a name
that resolves differently the second time (DNS rebinding) cannot slip past it.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not be called: the message says why (and never contains a secret)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL: the Host header and the TLS server name
    port: int
    address: str  # the approved IP address to connect to


def approved_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs can be called, not {parts.scheme or 'a relative URL'!r}")
    host = parts.hostname
    if not host:
        raise UrlRefused("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused("the URL's port is not a number from 0 to 65535") from None
    addresses = _resolve(host, port)
    if not settings.INNGEST_DEV_MODE:
        refused = [address for address in addresses if _is_internal(address) and not _is_allowed(address)]
        if refused:
            raise UrlRefused(f"{host} resolves to {refused[0]}, a private, loopback or link-local address; "
                             "the operator can allow its network with INNGEST_GATEWAY_ALLOWED_NETWORKS")
    return Target(parts.scheme, host, port, str(addresses[0]))


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"{host} cannot be resolved: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise UrlRefused(f"{host} resolves to no address")
    return addresses


def _is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global)


def _is_allowed(address: IPAddress) -> bool:
    return any(address in network for network in _allowed_networks(tuple(settings.INNGEST_GATEWAY_ALLOWED_NETWORKS)))


@lru_cache(maxsize=4)
def _allowed_networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
