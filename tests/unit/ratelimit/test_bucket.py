"""The bucket arithmetic: the in-process limiter on a Clock, and a property
test of the GCRA arithmetic against a plain token-bucket model."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from crackershop.ratelimit import gcra
from crackershop.ratelimit.interfaces import MICROS, Outcome, Policy
from crackershop.ratelimit.memory import MemoryLimiter

TEN_PER_MINUTE = Policy("global", 10, 60)


def take(limiter: MemoryLimiter, *policies: Policy, cost: int = 1, key: str = "c") -> Outcome:
    return limiter.check_now(key, list(policies) or [TEN_PER_MINUTE], cost)


def test_exactly_limit_requests_then_refused() -> None:
    """A fresh bucket allows exactly `limit` requests in a burst, then refuses."""
    limiter = MemoryLimiter(Clock())
    results = [take(limiter).allowed for _ in range(15)]
    assert results == [True] * 10 + [False] * 5


def test_remaining_and_reset_count_down() -> None:
    """Remaining falls by one per request; Reset is the time until full again."""
    clock = Clock()
    limiter = MemoryLimiter(clock)
    first = take(limiter).buckets[0]
    assert (first.remaining, first.reset) == (9, 6 * MICROS)
    for _ in range(8):
        take(limiter)
    last = take(limiter).buckets[0]
    assert (last.remaining, last.reset) == (0, 60 * MICROS)


def test_retry_after_is_honest() -> None:
    """After waiting the refusal's retry time a request succeeds; just before, it does not."""
    clock = Clock()
    limiter = MemoryLimiter(clock)
    for _ in range(10):
        take(limiter)
    clock.advance(1.5)
    refused = take(limiter)
    assert not refused.allowed
    retry = refused.buckets[0].retry
    assert retry == int(4.5 * MICROS)
    clock.advance((retry - 1) / MICROS)
    assert not take(limiter).allowed
    clock.advance(1 / MICROS)
    assert take(limiter).allowed


def test_tokens_come_back_one_interval_at_a_time() -> None:
    """An emptied bucket gains one request per window/limit seconds, up to the limit."""
    clock = Clock()
    limiter = MemoryLimiter(clock)
    for _ in range(10):
        take(limiter)
    clock.advance(12)
    assert [take(limiter).allowed for _ in range(3)] == [True, True, False]
    clock.advance(3600)
    assert sum(take(limiter).allowed for _ in range(20)) == 10


def test_all_or_nothing_across_policies() -> None:
    """A check of two buckets that one refuses takes a token from neither."""
    limiter = MemoryLimiter(Clock())
    small = Policy("writes", 2, 60)
    for _ in range(2):
        assert take(limiter, TEN_PER_MINUTE, small).allowed
    refused = take(limiter, TEN_PER_MINUTE, small)
    assert not refused.allowed
    assert refused.buckets[0].remaining == 8  # the global bucket was not charged
    assert take(limiter, TEN_PER_MINUTE).buckets[0].remaining == 7


def test_refund_gives_back_but_never_beyond_full() -> None:
    """A negative cost returns tokens, capped at a full bucket."""
    limiter = MemoryLimiter(Clock())
    take(limiter)
    assert take(limiter, cost=-1).buckets[0].remaining == 10
    assert take(limiter, cost=-5).buckets[0].remaining == 10
    assert take(limiter).buckets[0].remaining == 9


def test_clients_are_separate_and_full_buckets_are_forgotten() -> None:
    """Each key has its own bucket; a bucket back to full is dropped from memory."""
    clock = Clock()
    limiter = MemoryLimiter(clock)
    for _ in range(10):
        take(limiter, key="a")
    assert not take(limiter, key="a").allowed
    assert take(limiter, key="b").allowed
    take(limiter, key="a", cost=-10)
    take(limiter, key="b", cost=-10)
    assert limiter.tats == {}


class Reference:
    """The textbook token bucket, in exact fractions."""

    def __init__(self, limit: int, interval: int) -> None:
        self.capacity = Fraction(limit)
        self.rate = Fraction(1, interval)
        self.tokens = Fraction(limit)
        self.at = 0

    def take(self, now: int, cost: int) -> tuple[bool, int]:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        allowed = True
        if cost > 0:
            allowed = self.tokens >= cost
            if allowed:
                self.tokens -= cost
        else:
            self.tokens = min(self.capacity, self.tokens - cost)
        return allowed, int(self.tokens)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 50),
    interval=st.integers(1, 10_000),
    steps=st.lists(
        st.tuples(st.integers(0, 40_000), st.sampled_from([1, 1, 1, 2, -1])), max_size=80
    ),
)
def test_gcra_matches_the_token_bucket_model(
    limit: int, interval: int, steps: list[tuple[int, int]]
) -> None:
    """For any timing and costs, GCRA allows and counts exactly as a token bucket does."""
    policy = Policy("p", limit, limit * interval / MICROS)
    assert policy.interval == interval
    model = Reference(limit, interval)
    tat = None
    now = 0
    for gap, cost in steps:
        now += gap
        outcome, finals = gcra.check([tat], now, [policy], cost)
        allowed, remaining = model.take(now, cost)
        assert outcome.allowed == allowed
        assert outcome.buckets[0].remaining == remaining
        if outcome.allowed:
            tat = finals[0]
        if not allowed and cost <= limit:
            # honest retry: after it the model has the tokens
            retry = outcome.buckets[0].retry
            probe = Reference(limit, interval)
            probe.tokens, probe.at = model.tokens, model.at
            assert probe.take(now + retry, cost)[0]
            if retry > 0:
                probe = Reference(limit, interval)
                probe.tokens, probe.at = model.tokens, model.at
                assert not probe.take(now + retry - 1, cost)[0]
