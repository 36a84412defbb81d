"""One contract for both rate limiters: the in-process one and the Redis one
(its Lua script in a real redis-server) answer the same checks the same way."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from crackershop.ratelimit.interfaces import IRateLimiter, Policy
from crackershop.ratelimit.memory import MemoryLimiter
from crackershop.ratelimit.redis import RedisLimiter, connect, parse_address
from tests.integration.redis_process import RedisServer

# long windows: nothing refills during a test, so both limiters must agree exactly
EVERY = Policy("global", 6, 3600)
WRITES = Policy("writes", 3, 3600)
_keys = (f"203.0.113.{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("contract-redis"))
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[IRateLimiter]:
    if request.param == "memory":
        yield MemoryLimiter(reactor)
        return
    pool = connect(parse_address(redis_server.url), 2.0)
    shared = RedisLimiter(reactor, pool, MemoryLimiter(reactor), timeout=2.0)
    yield shared
    assert not shared.degraded, "the Redis limiter fell back during the contract test"
    pytest_twisted.blockon(shared.close())


@pytest_twisted.ensureDeferred
async def test_burst_then_refusal(limiter: IRateLimiter) -> None:
    """Exactly the limit passes in a burst; Remaining counts down to 0."""
    assert verifyObject(IRateLimiter, limiter)
    key = next(_keys)
    outcomes = [await limiter.check(key, [EVERY], 1) for _ in range(8)]
    assert [o.allowed for o in outcomes] == [True] * 6 + [False] * 2
    assert [o.buckets[0].remaining for o in outcomes] == [5, 4, 3, 2, 1, 0, 0, 0]
    assert 599 * 10**6 < outcomes[-1].buckets[0].retry <= 600 * 10**6


@pytest_twisted.ensureDeferred
async def test_all_or_nothing_and_refund(limiter: IRateLimiter) -> None:
    """A refused multi-bucket check takes nothing; a refund gives one token back."""
    key = next(_keys)
    for _ in range(3):
        assert (await limiter.check(key, [EVERY, WRITES], 1)).allowed
    refused = await limiter.check(key, [EVERY, WRITES], 1)
    assert not refused.allowed
    assert [b.remaining for b in refused.buckets] == [3, 0]
    assert refused.buckets[0].retry == 0 and refused.buckets[1].retry > 0
    back = await limiter.check(key, [WRITES], -1)
    assert back.allowed and back.buckets[0].remaining == 1
    assert (await limiter.check(key, [EVERY, WRITES], 1)).allowed
    other = await limiter.check(next(_keys), [EVERY, WRITES], 1)
    assert [b.remaining for b in other.buckets] == [5, 2]


@pytest_twisted.ensureDeferred
async def test_redis_keys_are_per_client_and_expire(redis_server: RedisServer) -> None:
    """In Redis each client and limiter is one key, expiring when its bucket is full again."""
    pool = connect(parse_address(redis_server.url), 2.0)
    shared = RedisLimiter(reactor, pool, MemoryLimiter(reactor), timeout=2.0)
    key = next(_keys)
    try:
        await shared.check(key, [EVERY, WRITES], 1)
    finally:
        await shared.close()
    names = sorted(redis_server.command("KEYS", f"rl:{{{key}}}:*"))
    assert names == [f"rl:{{{key}}}:global", f"rl:{{{key}}}:writes"]
    # one token used: full again after one interval (600 s and 1200 s)
    assert 599_000 < int(redis_server.command("PTTL", names[0])) <= 600_001
    assert 1_199_000 < int(redis_server.command("PTTL", names[1])) <= 1_200_001
