"""Who a request comes from, for rate limiting.

The peer address, unless the peer is a trusted proxy: then the right-most
address of X-Forwarded-For that is not itself a trusted proxy (every proxy
appends the address it saw, so everything left of the first untrusted hop
could have been written by the client). IPv6 clients are keyed by their /64,
the smallest block a subscriber normally gets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Optional, Union

from twisted.web.iweb import IRequest

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@lru_cache(maxsize=4096)
def parse_ip(text: str) -> Optional[Address]:
    """The address in the text (with or without a port), or None. Cached:
    the same peers come back with every request."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]  # a v6 zone
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def bucket_key(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ClientAddress:
    """Finds a request's client and its rate-limit key."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in trusted
        )

    def is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted)

    def address(self, request: IRequest) -> Optional[Address]:
        peer = parse_ip(str(getattr(request.getClientAddress(), "host", "")))
        if peer is None or not self.trusted or not self.is_trusted(peer):
            return peer
        hops = ",".join(
            value.decode("latin-1")
            for value in request.requestHeaders.getRawHeaders(b"x-forwarded-for", [])
        ).split(",")
        client: Address = peer
        for hop in reversed(hops):
            address = parse_ip(hop)
            if address is None:
                # A trusted proxy wrote something that is no address: the
                # last hop it vouched for is the best we know.
                break
            client = address
            if not self.is_trusted(address):
                break
        return client

    def key(self, request: IRequest) -> str:
        address = self.address(request)
        return bucket_key(address) if address is not None else "unknown"
