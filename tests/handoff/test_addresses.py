"""Whether a browser reached the console over plain http on this machine: the guess behind
the session cookie's Secure flag (handoff/api.py's secure_cookie)."""

from __future__ import annotations

import pytest

from handoff.addresses import is_loopback_host, local_plain_http, parse_networks

LOOPBACK = parse_networks("127.0.0.1,::1")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:8080", True),
        ("LOCALHOST.", True),
        ("console.localhost:8080", True),
        ("127.0.0.1:8080", True),
        ("127.8.9.10", True),
        ("[::1]:8080", True),
        ("::1", True),
        ("support.example.com", False),
        ("localhost.example.com", False),
        ("192.168.1.5:8080", False),
        ("[2001:db8::1]:8080", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("scheme", "host", "peer", "forwarded_for", "forwarded_proto", "trusted", "local"),
    [
        # make run, the tests, a browser on this machine
        ("http", "127.0.0.1:8080", "127.0.0.1", None, None, LOOPBACK, True),
        ("http", "localhost:8080", "::1", None, None, LOOPBACK, True),
        # TLS on the gateway itself
        ("https", "localhost:8080", "127.0.0.1", None, None, LOOPBACK, False),
        # a public name, or a browser on another machine
        ("http", "support.example.com", "127.0.0.1", None, None, LOOPBACK, False),
        ("http", "127.0.0.1:8080", "192.0.2.7", None, None, LOOPBACK, False),
        # the proxy on this machine: over https, or for a client elsewhere
        ("http", "127.0.0.1:8080", "127.0.0.1", None, "https", LOOPBACK, False),
        ("http", "127.0.0.1:8080", "127.0.0.1", "203.0.113.5", None, LOOPBACK, False),
        ("http", "127.0.0.1:8080", "127.0.0.1", "127.0.0.1", "http", LOOPBACK, True),
        # X-Forwarded-* from a peer that is not a trusted proxy count for nothing
        ("http", "127.0.0.1:8080", "127.0.0.1", "203.0.113.5", "https", (), True),
    ],
)
def test_plain_http_on_this_machine(
    scheme: str,
    host: str,
    peer: str,
    forwarded_for: str | None,
    forwarded_proto: str | None,
    trusted: tuple,
    local: bool,
) -> None:
    assert local_plain_http(scheme, host, peer, forwarded_for, forwarded_proto, trusted) is local
