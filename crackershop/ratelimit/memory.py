"""The in-process rate limiter: the same arithmetic as Redis, in a dict."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from crackershop.ratelimit import gcra
from crackershop.ratelimit.interfaces import MICROS, IRateLimiter, Outcome, Policy

# Full buckets are forgotten every this many checks, so memory follows the
# number of recently active clients rather than every client ever seen.
SWEEP_EVERY = 10_000


@implementer(IRateLimiter)
class MemoryLimiter:
    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.tats: dict[str, int] = {}
        self._checks = 0

    def now(self) -> int:
        return int(self.clock.seconds() * MICROS)

    def check_now(self, key: str, policies: Sequence[Policy], cost: int) -> Outcome:
        now = self.now()
        names = [f"{key}:{policy.name}" for policy in policies]
        outcome, finals = gcra.check([self.tats.get(n) for n in names], now, policies, cost)
        if outcome.allowed:
            for name, final in zip(names, finals):
                if final > now:
                    self.tats[name] = final
                else:
                    self.tats.pop(name, None)
        self._checks += 1
        if self._checks >= SWEEP_EVERY:
            self._checks = 0
            self.tats = {k: v for k, v in self.tats.items() if v > now}
        return Outcome(outcome.allowed, outcome.buckets, shared=False)

    def check(self, key: str, policies: Sequence[Policy], cost: int) -> Deferred[Outcome]:
        return succeed(self.check_now(key, policies, cost))

    def close(self) -> Deferred[None]:
        return succeed(None)
