"""The Redis limiter's leases, its protocol with Redis and its fallback, on
a Clock against a stand-in Redis running the Python twin of the Lua script
(the real one is in tests/integration)."""

from __future__ import annotations

import random
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher

from crackershop.ratelimit import gcra
from crackershop.ratelimit.interfaces import MICROS, Outcome, Policy
from crackershop.ratelimit.memory import MemoryLimiter
from crackershop.ratelimit.redis import (
    LEASE_MAX,
    LEASE_TTL,
    SHA,
    SPREAD,
    RedisLimiter,
    parse_address,
)

SMALL = Policy("global", 6, 60)
BIG = Policy("global", 1000, 3600)
WRITES = Policy("writes", 3, 60)


class NoScript(Exception):
    pass


class FakeRedis:
    """Answers EVALSHA with :func:`gcra.lease`, the Python twin of the Lua
    script; ``hold`` keeps replies until :meth:`release`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tats: dict[str, int] = {}
        self.scripts: set[str] = set()
        self.down = False
        self.hold = False
        self.held: list[tuple[Deferred[list[int]], list[int]]] = []
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
        spread, rest = args[0], args[1:]
        policies, wants = [], []
        for i in range(0, len(rest), 3):
            interval, limit, want = rest[i : i + 3]
            policies.append(Policy("p", limit, interval * limit / MICROS))
            wants.append(want)
        now = int(self.clock.seconds() * MICROS)
        allowed, granted, buckets, finals = gcra.lease(
            [self.tats.get(k) for k in keys], now, policies, wants, spread
        )
        self.tats.update(zip(keys, finals))
        reply = [int(allowed)]
        for g, b in zip(granted, buckets):
            reply += [g, b.remaining, b.reset, b.retry]
        if self.hold:
            d: Deferred[list[int]] = Deferred()
            self.held.append((d, reply))
            return d
        return succeed(reply)

    def release(self) -> None:
        held, self.held = self.held, []
        for d, reply in held:
            d.callback(reply)

    def tokens(self, key: str, policy: Policy) -> int:
        """What the bucket holds now."""
        now = int(self.clock.seconds() * MICROS)
        tat = max(self.tats.get(key, now), now)
        return int((policy.interval * policy.limit - (tat - now)) // policy.interval)

    def ping(self) -> Deferred[str]:
        return Deferred() if self.down else succeed("PONG")

    def disconnect(self) -> Deferred[None]:
        return succeed(None)


def setup(clock: Optional[Clock] = None) -> tuple[Clock, FakeRedis, RedisLimiter]:
    clock = clock or Clock()
    redis = FakeRedis(clock)
    return clock, redis, RedisLimiter(clock, redis, MemoryLimiter(clock), timeout=0.25)


def worker(clock: Clock, redis: FakeRedis) -> RedisLimiter:
    """Another process on the same Redis."""
    return RedisLimiter(clock, redis, MemoryLimiter(clock), timeout=0.25)


def result(d: Any) -> Any:
    out: list = []
    ensureDeferred(d).addBoth(out.append)
    assert out, "did not fire"
    return out[0]


def test_a_small_bucket_is_one_call_a_check_and_exact() -> None:
    """A bucket of fewer than 2*SPREAD requests is leased one token at a time:
    the script loaded once, one EVALSHA per check, exactly the limit."""
    _, redis, limiter = setup()
    outcomes = [result(limiter.check("c", [SMALL], 1)) for _ in range(8)]
    assert [o.allowed for o in outcomes] == [True] * 6 + [False] * 2
    assert [o.buckets[0].remaining for o in outcomes] == [5, 4, 3, 2, 1, 0, 0, 0]
    assert all(o.shared for o in outcomes)
    assert redis.loads == 1 and redis.calls == 8
    assert set(redis.tats) == {"rl:{c}:global"}


def test_a_client_that_keeps_coming_leases_more_and_calls_less() -> None:
    """Leases double 1, 2, 4, ... up to LEASE_MAX: in a big bucket 1,000 requests
    take a few dozen calls; near empty a bucket goes one token a call; and
    Remaining counts down by one a request throughout."""
    _, redis, limiter = setup()
    huge = Policy("global", 100_000, 3600)
    outcomes = [result(limiter.check("c", [huge], 1)) for _ in range(1000)]
    assert [o.buckets[0].remaining for o in outcomes] == list(range(99_999, 98_999, -1))
    assert redis.calls <= 7 + 1000 // LEASE_MAX + 1
    redis.calls = 0
    outcomes = [result(limiter.check("d", [BIG], 1)) for _ in range(1001)]
    assert [o.allowed for o in outcomes] == [True] * 1000 + [False]
    assert [o.buckets[0].remaining for o in outcomes[:1000]] == list(range(999, -1, -1))
    assert 2 * SPREAD < redis.calls < 1000 // 3


def test_a_lease_never_takes_more_than_a_share_of_the_bucket() -> None:
    """A grant is at most LEASE_MAX and 1/SPREAD of what the bucket holds."""
    _, _, limiter = setup()
    for _ in range(200):
        result(limiter.check("c", [BIG], 1))
    lease = limiter.leases["rl:{c}:global"]
    assert 1 <= lease.size <= min(LEASE_MAX, 1000 // SPREAD)


def test_unused_tokens_go_back_after_the_lease_ttl() -> None:
    """Tokens a process holds LEASE_TTL after its last lease are given back to Redis."""
    clock, redis, limiter = setup()
    for _ in range(40):
        result(limiter.check("c", [BIG], 1))
    assert redis.tokens("rl:{c}:global", BIG) < 960  # some are held here
    clock.pump([LEASE_TTL / 2] * 3)
    assert redis.tokens("rl:{c}:global", BIG) == 960
    assert limiter.leases == {}


def test_close_gives_back_what_it_holds() -> None:
    """Stopping gives every unused token back before disconnecting."""
    _, redis, limiter = setup()
    for _ in range(40):
        result(limiter.check("c", [BIG], 1))
    result(limiter.close())
    assert redis.tokens("rl:{c}:global", BIG) == 960


def test_a_refusal_takes_nothing_from_this_process_lease() -> None:
    """Two buckets, one leased here and one empty in Redis: the refused check
    keeps the leased token for the next check."""
    _, _, limiter = setup()
    for _ in range(3):
        assert result(limiter.check("c", [BIG, WRITES], 1)).allowed
    held = limiter.leases["rl:{c}:global"].tokens
    refused = result(limiter.check("c", [BIG, WRITES], 1))
    assert not refused.allowed and refused.buckets[1].retry > 0
    assert limiter.leases["rl:{c}:global"].tokens == held


def test_checks_in_flight_never_spend_a_token_twice() -> None:
    """While a lease call is in flight, other checks of the same client do not
    use a token this process has promised away."""
    _, redis, limiter = setup()
    for _ in range(2):  # leases of 1, then 2: one token held here
        result(limiter.check("c", [BIG], 1))
    lease = limiter.leases["rl:{c}:global"]
    assert lease.tokens == 1
    redis.hold = True
    pending = [limiter.check("c", [BIG, WRITES], 1) for _ in range(3)]
    assert lease.tokens == 0
    redis.release()
    outcomes = [result(d) for d in pending]
    assert [o.allowed for o in outcomes] == [True, True, True]
    # every token of the bucket is in Redis, held here, or spent by an admitted request
    assert redis.tokens("rl:{c}:global", BIG) + lease.tokens == 1000 - 2 - 3


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 400),
    workers=st.integers(1, 4),
    requests=st.integers(0, 600),
    seed=st.integers(0, 2**32),
)
def test_never_more_than_the_limit_across_processes(
    limit: int, workers: int, requests: int, seed: int
) -> None:
    """Any number of processes on one Redis, a client's requests spread over
    them at random: never more than the limit admitted in total; exactly the
    limit (or every request) when the bucket is below 2*SPREAD; and once the
    leases go back, every token of the bucket can be used."""
    policy = Policy("global", limit, 3600)
    clock = Clock()
    redis = FakeRedis(clock)
    limiters = [worker(clock, redis) for _ in range(workers)]
    rng = random.Random(seed)
    allowed = sum(
        result(rng.choice(limiters).check("c", [policy], 1)).allowed for _ in range(requests)
    )
    assert allowed <= limit
    if limit < 2 * SPREAD:
        assert allowed == min(limit, requests)
    clock.pump([LEASE_TTL / 2] * 3)  # unused tokens go back
    more = sum(result(limiters[0].check("c", [policy], 1)).allowed for _ in range(limit + 5))
    assert allowed + more == limit


def test_noscript_reloads_and_retries() -> None:
    """After Redis forgets the script (a restart), it is loaded again transparently."""
    _, redis, limiter = setup()
    result(limiter.check("c", [SMALL], 1))
    redis.scripts.clear()
    outcome = result(limiter.check("c", [SMALL], 1))
    assert isinstance(outcome, Outcome) and outcome.shared
    assert redis.loads == 2 and not limiter.degraded


def test_dead_redis_falls_back_warns_once_and_recovers() -> None:
    """A silent Redis: checks go to this server's own buckets (the whole limit)
    after the deadline, one warning, then shared again."""
    clock, redis, limiter = setup()
    warnings: list = []

    def observe(event: dict) -> None:
        if event.get("log_level") == LogLevel.warn:
            warnings.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        result(limiter.check("c", [SMALL], 1))
        redis.down = True
        pending = limiter.check("c", [SMALL], 1)
        clock.advance(0.25)
        outcome = result(pending)
        assert not outcome.shared and outcome.allowed and limiter.degraded
        local = [result(limiter.check("c", [SMALL], 1)).allowed for _ in range(6)]
        assert local == [True] * 5 + [False]
        assert result(limiter.readiness()) == ("redis", "degraded")
        clock.pump([0.25] * 20)
        assert len([w for w in warnings if "not answering" in w.get("log_format", "")]) == 1
        redis.down = False
        clock.pump([0.25] * 3)  # one probe period: interval plus the ping's deadline
        assert not limiter.degraded
        back = result(limiter.check("c", [SMALL], 1))
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


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 300),
    interval=st.integers(1, 10_000),
    steps=st.lists(
        st.tuples(st.integers(0, 40_000), st.sampled_from([1, 1, 2, 64, -1, -3])), max_size=60
    ),
)
def test_lease_arithmetic_agrees_with_check(
    limit: int, interval: int, steps: list[tuple[int, int]]
) -> None:
    """A lease of one token is the plain check; a bigger one takes no more than
    the bucket holds, and giving tokens back is a refund."""
    policy = Policy("p", limit, limit * interval / MICROS)
    tat: Optional[int] = None
    now = 0
    for gap, want in steps:
        now += gap
        before = gcra.check([tat], now, [policy], 0)[0].buckets[0].remaining
        allowed, granted, buckets, finals = gcra.lease([tat], now, [policy], [want], SPREAD)
        if want in (1, -1, -3):
            outcome, expected = gcra.check([tat], now, [policy], want)
            assert allowed == outcome.allowed and buckets == list(outcome.buckets)
            if outcome.allowed:
                assert finals == expected
        if want > 0 and allowed:
            assert 1 <= granted[0] <= min(want, max(1, before // SPREAD)) <= before
            assert buckets[0].remaining == before - granted[0]
        if want > 0 and not allowed:
            assert granted == [0] and before == 0
        tat = finals[0]
