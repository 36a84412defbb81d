"""Rate limits shared by several servers in Redis, without a round trip per
request: each process leases tokens from a client's buckets in Redis in
small batches and admits requests from its lease.

A lease is one Lua script (:data:`gcra.LUA`, loaded once with SCRIPT LOAD
and run by its SHA; after a Redis restart the server answers NOSCRIPT and it
is loaded again). A client's lease grows 1, 2, 4, ... up to
:data:`LEASE_MAX` tokens while it keeps coming, and Redis grants at most
1/:data:`SPREAD` of what the bucket holds, so a bucket near empty is handed
out one token at a time. Every admitted request spent a token Redis handed
out, and Redis never hands out more than the bucket holds: never more than
the limit in total, across processes and servers. Tokens a process still
holds :data:`LEASE_TTL` after its last lease go back to Redis (and on
shutdown), so another process may use them.

A lease that fails or outlasts the short deadline is answered by the
fallback: the server's own buckets (shared by its workers, or this
process's). While degraded, a probe pings Redis in the background and the
shared buckets are used again as soon as Redis answers; requests never wait
on a dead Redis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Optional, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

import attr
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from crackershop.ratelimit import gcra
from crackershop.ratelimit.interfaces import MICROS, Bucket, IRateLimiter, Outcome, Policy

log = Logger()

POOL_SIZE = 4
PROBE_INTERVAL = 0.5
RECONNECT_MAX_DELAY = 1.0
# A lease: at most this many tokens, at most 1/SPREAD of what the bucket
# holds (so buckets of fewer than 2*SPREAD requests go one token at a time),
# given back when not renewed for LEASE_TTL seconds.
LEASE_MAX = 64
SPREAD = 64
LEASE_TTL = 1.0
SHA = hashlib.sha1(gcra.LUA.encode("utf-8")).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)


@attr.s(auto_attribs=True, frozen=True)
class RedisAddress:
    """Where Redis is: a TCP host and port, or a UNIX socket path."""

    host: str = ""
    port: int = 6379
    path: str = ""
    db: int = 0
    password: Optional[str] = None

    def describe(self) -> str:
        where = f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"
        return f"{where} db {self.db}"


def parse_address(url: str) -> RedisAddress:
    """``redis://[:password@]host[:port][/db]`` or ``unix://[:password@]/path[?db=N]``."""
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else None
    if parts.scheme == "unix":
        query = parse_qs(parts.query)
        db = int(query.get("db", ["0"])[0])
        return RedisAddress(path=parts.path, db=db, password=password)
    if parts.scheme != "redis":
        raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
    db_text = parts.path.strip("/")
    return RedisAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db_text) if db_text else 0,
        password=password,
    )


def connect(address: RedisAddress, timeout: float) -> Any:
    """A lazy txredisapi pool: it connects (and reconnects) in the background."""
    import txredisapi

    common = {
        "dbid": address.db,
        "poolsize": POOL_SIZE,
        "reconnect": True,
        "password": address.password,
        "connectTimeout": max(timeout, 1.0),
        "replyTimeout": max(timeout, 1.0),
    }
    if address.path:
        pool = txredisapi.lazyUnixConnectionPool(address.path, **common)
    else:
        pool = txredisapi.lazyConnectionPool(address.host, address.port, **common)
    # txredisapi backs off up to 10 s between reconnections; a limiter that
    # wants Redis back as soon as it answers retries every second at most.
    factory = getattr(pool, "_factory", None)
    if factory is not None:
        factory.maxDelay = RECONNECT_MAX_DELAY
    return pool


def is_noscript(error: BaseException) -> bool:
    return type(error).__name__ == "ScriptDoesNotExist" or str(error).startswith("NOSCRIPT")


class LocalLimiter(Protocol):
    """What stands in while Redis does not answer: a limiter that answers at once."""

    def check_now(self, key: str, policies: Sequence[Policy], cost: int) -> Outcome: ...


@attr.s(auto_attribs=True)
class Lease:
    """Tokens of one bucket this process holds: ``tokens`` not used yet, of
    the last grant of ``size``; what Redis said of the bucket then
    (``remaining``, and ``reset`` in microseconds) at ``at`` (seconds); and
    when unused tokens go back."""

    policy: Policy
    tokens: int = 0
    size: int = 0
    remaining: int = 0
    reset: int = 0
    at: float = 0.0
    expires: float = 0.0

    def bucket(self, now: float) -> Bucket:
        """The bucket as Redis last told, counting the unused tokens as still
        in it (they go back if not used)."""
        interval = self.policy.interval
        reset = self.reset - int((now - self.at) * MICROS) - self.tokens * interval
        remaining = min(self.policy.limit, self.remaining + self.tokens)
        return Bucket(self.policy, remaining, max(0, reset), 0)


@implementer(IRateLimiter)
class RedisLimiter:
    """Leases from Redis, falls back to ``fallback`` while Redis is unreachable."""

    def __init__(
        self,
        clock: IReactorTime,
        redis: Any,
        fallback: LocalLimiter,
        timeout: float = 0.25,
        describe: str = "Redis",
    ) -> None:
        self.clock = clock
        self.redis = redis
        self.fallback = fallback
        self.timeout = timeout
        self.describe = describe
        self.degraded = False
        self.leases: dict[str, Lease] = {}
        self._loaded = False
        self._probe: Any = None
        self._sweeper: Any = None
        self._closed = False

    # -- checks

    def check(self, key: str, policies: Sequence[Policy], cost: int) -> Deferred[Outcome]:
        if self.degraded:
            return succeed(self.fallback.check_now(key, policies, cost))
        names = [bucket_name(key, policy) for policy in policies]
        if cost <= 0:  # giving back: straight to Redis
            return self._ask(key, names, policies, [cost] * len(policies), [], cost)
        held = [self.leases.get(name) for name in names]
        if all(lease is not None and lease.tokens >= cost for lease in held):
            return succeed(self._from_leases(cast("list[Lease]", held), policies, cost))
        # Take what this process holds now (a concurrent check must not count
        # it twice) and ask Redis for a lease of every other bucket.
        reserved: list[Lease] = []
        wants = []
        for lease in held:
            if lease is not None and lease.tokens >= cost:
                lease.tokens -= cost
                reserved.append(lease)
                wants.append(0)
            else:
                wants.append(self._want(lease))
        return self._ask(key, names, policies, wants, reserved, cost)

    def _ask(
        self,
        key: str,
        names: list[str],
        policies: Sequence[Policy],
        wants: list[int],
        reserved: list[Lease],
        cost: int,
    ) -> Deferred[Outcome]:
        d = ensureDeferred(self._shared(names, policies, wants, reserved, cost))
        d.addTimeout(self.timeout, self.clock)

        def failed(failure: Any) -> Outcome:
            for lease in reserved:  # still this process's: usable later
                lease.tokens += cost
            self._outage(failure.value)
            return self.fallback.check_now(key, policies, cost)

        return d.addErrback(failed)

    @staticmethod
    def _want(lease: Optional[Lease]) -> int:
        """A client that keeps coming gets twice its last lease, up to LEASE_MAX."""
        return 1 if lease is None else min(LEASE_MAX, 2 * lease.size)

    def _from_leases(self, held: list[Lease], policies: Sequence[Policy], cost: int) -> Outcome:
        now = self.clock.seconds()
        buckets = []
        for lease in held:
            lease.tokens -= cost
            buckets.append(lease.bucket(now))
        return Outcome(True, buckets, shared=True)

    async def _shared(
        self,
        names: list[str],
        policies: Sequence[Policy],
        wants: list[int],
        reserved: list[Lease],
        cost: int,
    ) -> Outcome:
        asked = [i for i, want in enumerate(wants) if want != 0]
        reply = await self._run(
            [names[i] for i in asked], [policies[i] for i in asked], [wants[i] for i in asked]
        )
        allowed = bool(int(reply[0]))
        now = self.clock.seconds()
        buckets: list[Bucket] = []
        answers = iter(range(len(asked)))
        leases = iter(reserved)
        for i, policy in enumerate(policies):
            if wants[i] == 0:  # from this process's lease
                lease = next(leases)
                if not allowed:
                    lease.tokens += cost
                buckets.append(lease.bucket(now))
                continue
            n = next(answers)
            granted, remaining, reset, retry = (int(v) for v in reply[1 + 4 * n : 5 + 4 * n])
            if cost > 0 and allowed:
                lease = self._granted(names[i], policy, granted, remaining, reset, now)
                lease.tokens -= cost
                buckets.append(lease.bucket(now))
            else:
                buckets.append(Bucket(policy, remaining, reset, retry))
        return Outcome(allowed, buckets, shared=True)

    def _granted(
        self, name: str, policy: Policy, granted: int, remaining: int, reset: int, now: float
    ) -> Lease:
        lease = self.leases.get(name)
        if lease is None:
            lease = self.leases[name] = Lease(policy)
        lease.tokens += granted
        lease.size = granted
        lease.remaining, lease.reset, lease.at = remaining, reset, now
        lease.expires = now + LEASE_TTL
        if self._sweeper is None and not self._closed:
            self._sweeper = LoopingCall(self._sweep)
            self._sweeper.clock = self.clock
            self._sweeper.start(LEASE_TTL / 2, now=False)
        return lease

    async def _run(
        self, names: Sequence[str], policies: Sequence[Policy], wants: Sequence[int]
    ) -> Sequence[Any]:
        args: list[int] = [SPREAD]
        for policy, want in zip(policies, wants):
            args += [policy.interval, policy.limit, want]
        if not self._loaded:
            await self._load()
        try:
            reply: Sequence[Any] = await self.redis.evalsha(SHA, list(names), args)
        except Exception as e:
            if not is_noscript(e):
                raise
            # Redis restarted (or its scripts were flushed): load it again.
            log.info("rate-limit script missing in Redis; loading it again")
            await self._load()
            reply = await self.redis.evalsha(SHA, list(names), args)
        return reply

    async def _load(self) -> None:
        sha = await self.redis.script_load(gcra.LUA)
        if sha != SHA:
            raise RuntimeError(f"Redis named the script {sha}, expected {SHA}")
        self._loaded = True

    # -- giving unused tokens back

    def _sweep(self) -> Deferred[None]:
        """Give back what leases not renewed for LEASE_TTL still hold."""
        now = self.clock.seconds()
        due = [name for name, lease in self.leases.items() if lease.expires <= now]
        return self._give_back(due)

    def _give_back(self, names: Sequence[str]) -> Deferred[None]:
        by_client: dict[str, list[tuple[str, Lease]]] = {}
        for name in names:
            lease = self.leases.pop(name)
            if lease.tokens > 0:
                by_client.setdefault(client_of(name), []).append((name, lease))
        if not self.leases and self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
            self._sweeper = None
        if self.degraded or not by_client:
            return succeed(None)  # while Redis is away the tokens are simply spent
        calls = []
        for held in by_client.values():
            # one call per client: its keys share a cluster slot (one hash tag)
            d = ensureDeferred(
                self._run(
                    [name for name, _ in held],
                    [lease.policy for _, lease in held],
                    [-lease.tokens for _, lease in held],
                )
            )
            d.addTimeout(self.timeout, self.clock)
            calls.append(d)
        done = DeferredList(calls, consumeErrors=True)
        return done.addCallback(lambda _: None)

    # -- outage and recovery

    def _outage(self, error: BaseException) -> None:
        if self.degraded or self._closed:
            return
        self.degraded = True
        self._loaded = False
        log.warn(
            "Redis at {where} is not answering ({error}); rate limits fall back to "
            "this server's own buckets until it does",
            where=self.describe,
            error=type(error).__name__,
        )
        self._schedule_probe()

    def _schedule_probe(self) -> None:
        if not self._closed:
            self._probe = self.clock.callLater(PROBE_INTERVAL, self._run_probe)

    def _run_probe(self) -> None:
        self._probe = None
        d = ensureDeferred(self.ping())

        def answered(ok: bool) -> None:
            if ok:
                self.degraded = False
                log.info(
                    "Redis at {where} answers again; shared rate limits resumed",
                    where=self.describe,
                )
            else:
                self._schedule_probe()

        d.addCallback(answered)

    async def ping(self) -> bool:
        d = ensureDeferred(self._ping())
        d.addTimeout(self.timeout, self.clock)
        try:
            await d
        except Exception:
            return False
        return True

    async def _ping(self) -> None:
        await self.redis.ping()

    async def readiness(self) -> tuple[str, str]:
        """For /ready: ``ok``, or ``degraded`` while checks are local."""
        if self.degraded:
            return "redis", "degraded"
        if not await self.ping():
            self._outage(TimeoutError("ping"))
            return "redis", "degraded"
        return "redis", "ok"

    def close(self) -> Deferred[None]:
        """Give back every unused token, then disconnect."""
        self._closed = True
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        d = self._give_back(list(self.leases))

        def disconnect(_: Any) -> Deferred[None]:
            closed: Deferred[None] = self.redis.disconnect()
            return closed

        return d.addCallback(disconnect)


def bucket_name(key: str, policy: Policy) -> str:
    # One hash tag per client: every key of a check lives in one cluster slot.
    return f"rl:{{{key}}}:{policy.name}"


def client_of(name: str) -> str:
    return name[name.index("{") + 1 : name.rindex("}")]
