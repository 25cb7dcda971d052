"""The client's address behind proxies: for rate limits and login throttles."""

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

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if peer is None:
        return None
    if not is_trusted(peer):
        return peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return None


def parse_networks(value: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES: addresses or networks separated by commas."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
    )
