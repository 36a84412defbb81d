"""The buckets a cluster's workers share in memory, on a Clock: the same
answers as the in-process limiter, one bucket for every limiter on the
table, slots reused only when full again, and the group-full case."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher

from crackershop.ratelimit.interfaces import Policy
from crackershop.ratelimit.memory import MemoryLimiter
from crackershop.ratelimit.shared import BucketTable, SharedLimiter, fingerprint

EVERY = Policy("global", 10, 60)
WRITES = Policy("writes", 3, 60)
NAMES = ("global", "writes", "auth")


@pytest.fixture
def table() -> Iterator[BucketTable]:
    made = BucketTable.create(groups=8, ways=4)
    yield made
    made.close()


def test_exactly_the_limit_then_refused(table: BucketTable) -> None:
    """A fresh bucket allows exactly `limit` requests, Remaining counting down."""
    limiter = SharedLimiter(Clock(), table, NAMES)
    outcomes = [limiter.check_now("c", [EVERY], 1) for _ in range(12)]
    assert [o.allowed for o in outcomes] == [True] * 10 + [False] * 2
    assert [o.buckets[0].remaining for o in outcomes[:3]] == [9, 8, 7]
    assert outcomes[-1].buckets[0].retry == 6 * 10**6


def test_every_limiter_on_the_table_counts_one_bucket(table: BucketTable) -> None:
    """Two workers' limiters on one table (the second attached by its fd, as
    a worker inherits it) hold one limit between them."""
    clock = Clock()
    inherited = BucketTable(os.dup(table.fd))
    try:
        first = SharedLimiter(clock, table, NAMES)
        second = SharedLimiter(clock, inherited, NAMES)
        allowed = sum(
            (first if i % 2 else second).check_now("c", [EVERY], 1).allowed for i in range(30)
        )
        assert allowed == 10
        clock.advance(6)  # one token back
        assert second.check_now("c", [EVERY], 1).allowed
        assert not first.check_now("c", [EVERY], 1).allowed
    finally:
        inherited.close()


def test_all_or_nothing_and_refunds(table: BucketTable) -> None:
    """A refused two-bucket check takes nothing; a refund never passes full."""
    limiter = SharedLimiter(Clock(), table, NAMES)
    for _ in range(3):
        assert limiter.check_now("c", [EVERY, WRITES], 1).allowed
    refused = limiter.check_now("c", [EVERY, WRITES], 1)
    assert not refused.allowed and [b.remaining for b in refused.buckets] == [7, 0]
    assert limiter.check_now("c", [WRITES], -5).buckets[0].remaining == 3
    assert limiter.check_now("c", [EVERY], 1).buckets[0].remaining == 6


def test_a_full_bucket_frees_its_slot(table: BucketTable) -> None:
    """Once a client's buckets are full again its slot goes to another client,
    which changes nothing for the first (a full bucket is no bucket)."""
    clock = Clock()
    small = BucketTable.create(groups=1, ways=2)
    try:
        limiter = SharedLimiter(clock, small, NAMES)
        for key in ("a", "b"):
            for _ in range(10):
                limiter.check_now(key, [EVERY], 1)
        clock.advance(60)  # both full again
        assert limiter.check_now("c", [EVERY], 1).allowed
        assert limiter.evicted == 0
        assert [limiter.check_now("a", [EVERY], 1).allowed for _ in range(11)] == [True] * 10 + [
            False
        ]
    finally:
        small.close()


def test_a_full_group_forgets_the_bucket_nearest_to_full_and_says_so() -> None:
    """With every slot of a group mid-window, a new client takes the slot of the
    client nearest to a full bucket; one warning, counted."""
    clock = Clock()
    small = BucketTable.create(groups=1, ways=2)
    warnings: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_level") == LogLevel.warn:
            warnings.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        limiter = SharedLimiter(clock, small, NAMES)
        for _ in range(10):
            limiter.check_now("heavy", [EVERY], 1)
        limiter.check_now("light", [EVERY], 1)
        assert limiter.check_now("new", [EVERY], 1).allowed
        limiter.check_now("newer", [EVERY], 1)
        assert limiter.evicted == 2
        assert len(warnings) == 1 and "forgotten" in warnings[0]["log_format"]
        # the heavy client was kept: still refused
        assert not limiter.check_now("heavy", [EVERY], 1).allowed
    finally:
        globalLogPublisher.removeObserver(observe)
        small.close()


def test_more_policies_than_columns_is_refused(table: BucketTable) -> None:
    """A limiter asked to keep more policies than a slot holds refuses at once."""
    with pytest.raises(ValueError, match="columns"):
        SharedLimiter(Clock(), table, ("a", "b", "c", "d"))


def test_not_a_table_is_refused() -> None:
    """A descriptor that is not a rate-limit table is not taken for one."""
    fd = os.memfd_create("other")
    os.ftruncate(fd, 4096)
    with pytest.raises(ValueError, match="not a crackershop rate-limit table"):
        BucketTable(fd)


def test_fingerprints_are_stable_and_never_zero() -> None:
    """The same key gives the same slot in every process (no hash seed), never 0."""
    assert fingerprint("203.0.113.7") == fingerprint("203.0.113.7")
    assert fingerprint("203.0.113.7") != fingerprint("203.0.113.8")
    assert all(0 < fingerprint(str(n)) < 2**63 for n in range(1000))


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([(EVERY,), (EVERY, WRITES), (WRITES,)]),
            st.sampled_from([1, 1, 1, -1]),
            st.integers(0, 8_000_000),
        ),
        max_size=60,
    )
)
def test_answers_as_the_in_process_limiter(
    steps: list[tuple[str, tuple[Policy, ...], int, int]],
) -> None:
    """For any clients, policies, costs and timing, the shared table answers
    exactly as the in-process limiter does."""
    clock = Clock()
    table = BucketTable.create(groups=2, ways=4)
    try:
        shared = SharedLimiter(clock, table, NAMES)
        memory = MemoryLimiter(clock)
        for key, policies, cost, gap in steps:
            clock.advance(gap / 10**6)
            got = shared.check_now(key, list(policies), cost)
            want = memory.check_now(key, list(policies), cost)
            assert (got.allowed, got.buckets) == (want.allowed, want.buckets)
    finally:
        table.close()
