"""The client a request is limited as: peer, trusted proxies, spoofing, IPv6."""

from __future__ import annotations

from typing import Optional

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.test.requesthelper import DummyRequest

from crackershop.ratelimit.clientip import ClientAddress

PROXIES = ClientAddress(["10.0.0.0/8", "fd00::/8"])


def request(peer: str, xff: Optional[list[str]] = None) -> DummyRequest:
    r = DummyRequest([b""])
    r.client = IPv6Address("TCP", peer, 4321) if ":" in peer else IPv4Address("TCP", peer, 4321)
    for value in xff or []:
        r.requestHeaders.addRawHeader(b"x-forwarded-for", value.encode())
    return r


def test_peer_address_without_proxies() -> None:
    """With no trusted proxies the key is the peer address."""
    assert ClientAddress().key(request("203.0.113.7")) == "203.0.113.7"


def test_spoofed_forwarded_for_from_untrusted_peer_changes_nothing() -> None:
    """An untrusted peer's X-Forwarded-For is ignored."""
    r = request("203.0.113.7", ["198.51.100.1"])
    assert PROXIES.key(r) == "203.0.113.7"
    assert ClientAddress().key(r) == "203.0.113.7"


def test_trusted_proxy_gives_rightmost_untrusted_address() -> None:
    """Behind trusted proxies the client is the right-most untrusted X-Forwarded-For hop."""
    r = request("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.1.1.1"])
    assert PROXIES.key(r) == "198.51.100.1"


def test_forwarded_for_split_over_several_headers() -> None:
    """Several X-Forwarded-For headers read as one list, in order."""
    r = request("10.0.0.2", ["6.6.6.6", "198.51.100.9"])
    assert PROXIES.key(r) == "198.51.100.9"


def test_trusted_proxy_without_forwarded_for_is_the_client() -> None:
    """A trusted peer that sends no X-Forwarded-For is limited as itself."""
    assert PROXIES.key(request("10.0.0.2")) == "10.0.0.2"


def test_garbage_hop_stops_at_last_vouched_address() -> None:
    """A non-address in the chain stops the walk at the last trusted hop."""
    r = request("10.0.0.2", ["198.51.100.1, not-an-ip, 10.2.2.2"])
    assert PROXIES.key(r) == "10.2.2.2"


def test_ipv6_clients_keyed_by_their_64() -> None:
    """Two addresses in one IPv6 /64 share a bucket; another /64 does not."""
    a = ClientAddress().key(request("2001:db8:1:2::1"))
    b = ClientAddress().key(request("2001:db8:1:2:ffff::9"))
    c = ClientAddress().key(request("2001:db8:1:3::1"))
    assert a == b == "2001:db8:1:2::/64"
    assert c != a


def test_ipv4_mapped_ipv6_is_the_ipv4_client() -> None:
    """::ffff:a.b.c.d is keyed as a.b.c.d, not as an IPv6 /64."""
    assert ClientAddress().key(request("::ffff:203.0.113.7")) == "203.0.113.7"


def test_ipv6_forwarded_address_with_port() -> None:
    """A bracketed IPv6 hop with a port is read as its address."""
    r = request("fd00::1", ["[2001:db8:5::7]:443"])
    assert PROXIES.key(r) == "2001:db8:5::/64"
