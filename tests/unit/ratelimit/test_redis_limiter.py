"""The shared limiter's protocol with Redis, and its fallback, on a Clock
against a stand-in Redis (the real one is in tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher

from crackershop.ratelimit import gcra
from crackershop.ratelimit.interfaces import MICROS, Outcome, Policy
from crackershop.ratelimit.memory import MemoryLimiter
from crackershop.ratelimit.redis import SHA, RedisLimiter, parse_address

POLICY = Policy("global", 6, 60)


class NoScript(Exception):
    pass


class FakeRedis:
    """Answers EVALSHA with the Python twin of the Lua script."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tats: dict[str, int] = {}
        self.scripts: set[str] = set()
        self.down = False
        self.loads = 0
        self.calls = 0

    def script_load(self, script: str) -> Deferred[str]:
        if self.down:
            return Deferred()
        self.loads += 1
        self.scripts.add(SHA)
        return succeed(SHA)

    def evalsha(self, sha: str, keys: list[str], args: list[int]) -> Deferred[list[int]]:
        self.calls += 1
        if self.down:
            return Deferred()  # never answers: the limiter's deadline must act
        if sha not in self.scripts:
            return fail(NoScript("NOSCRIPT No matching script."))
        cost, rest = args[0], args[1:]
        policies = [
            Policy("p", rest[i + 1], rest[i] * rest[i + 1] / MICROS) for i in range(0, len(rest), 2)
        ]
        now = int(self.clock.seconds() * MICROS)
        outcome, finals = gcra.check([self.tats.get(k) for k in keys], now, policies, cost)
        if outcome.allowed:
            self.tats.update(zip(keys, finals))
        reply = [int(outcome.allowed)]
        for b in outcome.buckets:
            reply += [b.remaining, b.reset, b.retry]
        return succeed(reply)

    def ping(self) -> Deferred[str]:
        return Deferred() if self.down else succeed("PONG")

    def disconnect(self) -> Deferred[None]:
        return succeed(None)


def setup(share: int = 1) -> tuple[Clock, FakeRedis, RedisLimiter]:
    clock = Clock()
    redis = FakeRedis(clock)
    return clock, redis, RedisLimiter(clock, redis, MemoryLimiter(clock), share=share, timeout=0.25)


def result(d: Any) -> Any:
    out: list = []
    ensureDeferred(d).addBoth(out.append)
    assert out, "did not fire"
    return out[0]


def test_loads_script_once_and_counts_in_redis() -> None:
    """The script is loaded once, then each check is one EVALSHA in Redis."""
    _, redis, limiter = setup()
    outcomes = [result(limiter.check("c", [POLICY], 1)) for _ in range(8)]
    assert [o.allowed for o in outcomes] == [True] * 6 + [False] * 2
    assert all(o.shared for o in outcomes)
    assert redis.loads == 1 and redis.calls == 8
    assert set(redis.tats) == {"rl:{c}:global"}


def test_noscript_reloads_and_retries() -> None:
    """After Redis forgets the script (a restart), it is loaded again transparently."""
    _, redis, limiter = setup()
    result(limiter.check("c", [POLICY], 1))
    redis.scripts.clear()
    outcome = result(limiter.check("c", [POLICY], 1))
    assert isinstance(outcome, Outcome) and outcome.shared
    assert redis.loads == 2 and not limiter.degraded


def test_dead_redis_falls_back_warns_once_and_recovers() -> None:
    """A silent Redis: checks go local after the deadline, one warning, then shared again."""
    clock, redis, limiter = setup(share=2)
    warnings: list = []

    def observe(event: dict) -> None:
        if event.get("log_level") == LogLevel.warn:
            warnings.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        result(limiter.check("c", [POLICY], 1))
        redis.down = True
        pending = limiter.check("c", [POLICY], 1)
        clock.advance(0.25)
        outcome = result(pending)
        assert not outcome.shared and outcome.allowed and limiter.degraded
        # each worker gets its share: 6 / 2 = 3 local requests (one used above)
        local = [result(limiter.check("c", [POLICY], 1)).allowed for _ in range(4)]
        assert local == [True, True, False, False]
        assert result(limiter.readiness()) == ("redis", "degraded")
        clock.pump([0.25] * 20)
        assert len([w for w in warnings if "not answering" in w.get("log_format", "")]) == 1
        redis.down = False
        clock.pump([0.25] * 3)  # one probe period: interval plus the ping's deadline
        assert not limiter.degraded
        back = result(limiter.check("c", [POLICY], 1))
        assert back.shared and back.buckets[0].remaining == 4
        assert result(limiter.readiness()) == ("redis", "ok")
    finally:
        globalLogPublisher.removeObserver(observe)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:s3cret@cache.internal:6380/2", ("cache.internal", 6380, "", 2, "s3cret")),
        ("redis://127.0.0.1", ("127.0.0.1", 6379, "", 0, None)),
        ("unix:///run/shop/redis.sock?db=3", ("", 6379, "/run/shop/redis.sock", 3, None)),
    ],
)
def test_parse_address(url: str, expected: tuple) -> None:
    """REDIS_URL forms: TCP with password and db, bare host, UNIX socket."""
    a = parse_address(url)
    assert (a.host, a.port, a.path, a.db, a.password) == expected
