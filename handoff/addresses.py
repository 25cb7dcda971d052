"""The client's address behind proxies (for rate limits and login throttles), and whether a
browser reaches this server over plain http on this machine (for the cookies' Secure flag)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str | None, forwarded_for: str | None, trusted: Iterable[Network]) -> str | None:
    """The customer's address: the peer's, or, when the peer is a trusted proxy, the last
    address in X-Forwarded-For that is not one (proxies append the address they saw).
    None for a request from this machine that no proxy forwarded (the shop's own back end,
    a local test): those are limited per sender only."""
    networks = list(trusted)
    if peer is None:
        return None
    if not _in(peer, networks):
        return peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in(hop, networks):
            return hop
    return None


def parse_networks(value: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES: addresses or networks separated by commas."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
    )


def is_loopback_host(host: str) -> bool:
    """localhost, a name under .localhost, or a loopback address, with or without a port (a
    Host header): names a browser resolves to this machine and trusts even over plain http."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8080
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:  # 127.0.0.1:8080, localhost:8080
        name = name.split(":", 1)[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def local_plain_http(
    scheme: str,
    host: str,
    peer: str | None,
    forwarded_for: str | None,
    forwarded_proto: str | None,
    trusted: Iterable[Network],
) -> bool:
    """True when the browser reached this server over plain http on this machine (the Host
    it used is a loopback one, no TLS, and no trusted proxy says it came over https or from
    another machine). X-Forwarded-* count only from a trusted proxy."""
    networks = list(trusted)
    if scheme != "http" or not is_loopback_host(host):
        return False
    proxied = peer is not None and _in(peer, networks)
    if proxied and forwarded_proto and forwarded_proto.split(",")[0].strip().lower() != "http":
        return False  # the proxy took it over https
    client = client_address(peer, forwarded_for, networks)
    return client is None or is_loopback_host(client)


def _in(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
