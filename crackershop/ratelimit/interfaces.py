"""The rate-limiter seam: policies, what a check answers, and IRateLimiter."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import attr
from twisted.internet.defer import Deferred
from zope.interface import Interface

MICROS = 1_000_000


@attr.s(auto_attribs=True, frozen=True)
class Policy:
    """``limit`` requests per ``window`` seconds, as a token bucket that holds
    ``limit`` tokens and gains one every ``window / limit`` seconds."""

    name: str
    limit: int
    window: float

    @cached_property
    def interval(self) -> int:
        """Microseconds per token. Rounded up, so a non-integer quotient makes
        the limit stricter by under a microsecond per token, never looser."""
        window = round(self.window * MICROS)  # whole microseconds, free of float noise
        return max(1, -(-window // self.limit))


@attr.s(auto_attribs=True, frozen=True)
class Bucket:
    """One bucket after a check. Times are microseconds from the check."""

    policy: Policy
    remaining: int
    reset: int
    retry: int


@attr.s(auto_attribs=True, frozen=True)
class Outcome:
    """A check of several buckets at once: allowed only if every bucket had a
    token, and then one was taken from each (a denied check takes nothing).
    ``shared``: counted in Redis, for every server using it (not only this
    server's own buckets)."""

    allowed: bool
    buckets: Sequence[Bucket]
    shared: bool = True


class IRateLimiter(Interface):
    def check(key: str, policies: Sequence[Policy], cost: int) -> Deferred[Outcome]:
        """Take ``cost`` tokens from the client's bucket of every policy, all
        or none; a negative cost gives tokens back (never beyond full)."""

    def close() -> Deferred[None]:
        """Release connections."""
