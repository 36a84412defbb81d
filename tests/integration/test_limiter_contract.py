"""One contract for every rate limiter: the in-process one, the table a
cluster's workers share in memory, and the Redis one (its Lua script in a
real redis-server) answer the same checks the same way; and the shared
table holds one exact limit across real processes, even one killed while
it holds a lock."""

from __future__ import annotations

import fcntl
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from crackershop.ratelimit.interfaces import IRateLimiter, Policy
from crackershop.ratelimit.memory import MemoryLimiter
from crackershop.ratelimit.redis import RedisLimiter, connect, parse_address
from crackershop.ratelimit.shared import BucketTable, SharedLimiter, fingerprint
from tests.integration.redis_process import RedisServer
from tests.support import ROOT, child_env, wait_until

# long windows: nothing refills during a test, so every limiter must agree exactly
EVERY = Policy("global", 6, 3600)
WRITES = Policy("writes", 3, 3600)
BIG = Policy("global", 1000, 3600)
_keys = (f"203.0.113.{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("contract-redis"))
    yield server
    server.stop()


@pytest.fixture(params=["memory", "shared", "redis"])
def limiter(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[IRateLimiter]:
    if request.param == "memory":
        yield MemoryLimiter(reactor)
        return
    if request.param == "shared":
        table = BucketTable.create()
        yield SharedLimiter(reactor, table, ("global", "writes", "auth"))
        table.close()
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
async def test_a_big_bucket_counts_every_request(limiter: IRateLimiter) -> None:
    """In a bucket of 1,000 (where Redis leases tokens in batches) each
    request counts one: Remaining falls by one a request, the 1,001st is
    refused."""
    key = next(_keys)
    outcomes = [await limiter.check(key, [BIG], 1) for _ in range(1001)]
    assert [o.allowed for o in outcomes] == [True] * 1000 + [False]
    assert [o.buckets[0].remaining for o in outcomes[:1000]] == list(range(999, -1, -1))


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


@pytest_twisted.ensureDeferred
async def test_redis_leases_from_processes_hold_one_limit(redis_server: RedisServer) -> None:
    """Three processes' limiters on one Redis, a client's 3,000 requests spread
    over them: exactly 1,000 admitted, and closing gives every unused token back."""
    limiters = [
        RedisLimiter(
            reactor, connect(parse_address(redis_server.url), 2.0), MemoryLimiter(reactor), 2.0
        )
        for _ in range(3)
    ]
    key = next(_keys)
    allowed = 0
    for n in range(3000):
        allowed += (await limiters[(n * 7) % 3].check(key, [BIG], 1)).allowed
    for shared in limiters:
        await shared.close()
    assert allowed == 1000


SHARED_WORKER = """
import sys
from twisted.internet import reactor
from crackershop.ratelimit.interfaces import Policy
from crackershop.ratelimit.shared import BucketTable, SharedLimiter
limiter = SharedLimiter(reactor, BucketTable(int(sys.argv[1])), ("global",))
policy = Policy("global", int(sys.argv[2]), 10**7)  # nothing refills meanwhile
print("ready", flush=True)
sys.stdin.readline()
print(sum(limiter.check_now("203.0.113.250", [policy], 1).allowed for _ in range(int(sys.argv[3]))))
"""


def test_the_shared_table_is_exact_across_processes() -> None:
    """Four processes checking one client at the same moment on one inherited
    table admit exactly the limit between them (30,000 of 80,000)."""
    table = BucketTable.create()
    runs = []
    try:
        for _ in range(4):
            run = subprocess.Popen(
                [sys.executable, "-c", SHARED_WORKER, str(table.fd), "30000", "20000"],
                pass_fds=[table.fd],
                env=child_env({}),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            runs.append(run)
            assert run.stdout is not None and run.stdout.readline().strip() == "ready"
        for run in runs:  # all at once
            assert run.stdin is not None
            run.stdin.write("go\n")
            run.stdin.close()
        counts = []
        for run in runs:
            assert run.stdout is not None
            counts.append(int(run.stdout.read()))
            run.wait(120)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait(10)
        table.close()
    print("admitted per process", counts)
    assert sum(counts) == 30000


HOLDER = """
import sys, time
from crackershop.ratelimit.shared import BucketTable
table = BucketTable(int(sys.argv[1]))
table.lock(int(sys.argv[2]))
print("locked", flush=True)
time.sleep(600)
"""


def free(table: BucketTable, group: int) -> bool:
    """Whether no other process holds the group's lock (asked without waiting)."""
    try:
        fcntl.lockf(table.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, group)
    except OSError:
        return False
    table.unlock(group)
    return True


def test_a_worker_killed_holding_a_lock_does_not_block_the_others() -> None:
    """A process killed (SIGKILL) while it holds a group's lock: the kernel
    releases it, and the next check of that group goes through."""
    table = BucketTable.create()
    key = next(_keys)
    group = fingerprint(key) % table.groups
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(table.fd), str(group)],
        pass_fds=[table.fd],
        env=child_env({}),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert not free(table, group)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
        wait_until(lambda: free(table, group), 10, "the dead holder's lock to go")
        limiter = SharedLimiter(reactor, table, ("global",))
        assert limiter.check_now(key, [EVERY], 1).allowed
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        table.close()
