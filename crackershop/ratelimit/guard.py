"""The router guard that applies the three limiters to every request.

Which limiters count a route is the route's own metadata (``Route.rate``,
read through ``Route.limiters``): none for the probes, global for every
other route, writes for POST/PUT/PATCH/DELETE, and auth where a password or
a sign-in credential can be guessed. One check per request covers every
limiter that applies, all or none. The auth limiter counts failures only:
the attempt takes its token up front (so parallel attempts cannot outrun the
limit) and gets it back when the response is not a 4xx.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import attr
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from crackershop.errors import RateLimited
from crackershop.metrics import metrics
from crackershop.ratelimit.clientip import ClientAddress
from crackershop.ratelimit.interfaces import MICROS, Bucket, IRateLimiter, Outcome, Policy

if TYPE_CHECKING:
    from crackershop.app.routing import Route

log = Logger()

MESSAGE = "Too many requests, please try again later"
FIELDS = ("Limit", "Remaining", "Reset")
RETRY_AFTER = "Retry-After"
# What a limited response carries, for CORS to expose to browsers.
RESPONSE_HEADERS = (
    *(f"RateLimit-{field}" for field in FIELDS),
    "RateLimit-Policy",
    RETRY_AFTER,
    *(f"X-RateLimit-{field}" for field in FIELDS),
)


@attr.s(auto_attribs=True, frozen=True)
class Policies:
    every: Policy
    writes: Policy
    auth: Policy

    def named(self, name: str) -> Policy:
        """The policy of a limiter named in ``Route.limiters``."""
        return {"global": self.every, "writes": self.writes, "auth": self.auth}[name]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.every.name, self.writes.name, self.auth.name)


def seconds(micros: int) -> int:
    return math.ceil(micros / MICROS)


def headers_for(outcome: Outcome) -> dict[str, str]:
    """The RateLimit-* headers of the bucket that binds: the one that refused,
    or else the one with the fewest requests left."""
    buckets = list(outcome.buckets)
    shown: Bucket
    if outcome.allowed:
        shown = min(buckets, key=lambda b: (b.remaining, -b.reset))
    else:
        shown = max(buckets, key=lambda b: b.retry)
    policy = shown.policy
    values = dict(zip(FIELDS, (str(policy.limit), str(shown.remaining), str(seconds(shown.reset)))))
    headers = {}
    for name, value in values.items():
        headers[f"RateLimit-{name}"] = value
        headers[f"X-RateLimit-{name}"] = value
    headers["RateLimit-Policy"] = f"{policy.limit};w={math.ceil(policy.window)}"
    if not outcome.allowed:
        headers[RETRY_AFTER] = str(max(1, seconds(shown.retry)))
    return headers


class RateLimitGuard:
    def __init__(self, limiter: IRateLimiter, policies: Policies, clients: ClientAddress) -> None:
        self.limiter = limiter
        self.policies = policies
        self.clients = clients

    def applied(self, route: Route) -> Sequence[Policy]:
        return [self.policies.named(name) for name in route.limiters]

    async def __call__(self, request: IRequest, route: Route) -> None:
        policies = self.applied(route)
        if not policies:
            return
        key = self.clients.key(request)
        outcome = await self.limiter.check(key, policies, 1)
        headers = headers_for(outcome)
        if not outcome.allowed:
            metrics().rate_limited.inc()
            raise RateLimited(MESSAGE, headers=headers)
        for name, value in headers.items():
            request.setHeader(name.encode("ascii"), value.encode("ascii"))
        if self.policies.auth in policies:
            finished = cast(Any, request).notifyFinish()
            finished.addCallbacks(lambda _: self._settle(request, key), lambda _: None)

    def _settle(self, request: IRequest, key: str) -> None:
        code = int(getattr(request, "code", 200))
        if 400 <= code < 500:
            return  # a failure: the token stays taken
        d = self.limiter.check(key, [self.policies.auth], -1)
        d.addErrback(self._refund_failed)

    def _refund_failed(self, failure: Failure) -> None:
        log.failure("giving back an auth rate-limit token failed", failure)
