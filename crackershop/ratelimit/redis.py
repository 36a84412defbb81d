"""The shared rate limiter: one Lua script per check in Redis, with the
in-process limiter standing in while Redis does not answer.

The script is loaded once (SCRIPT LOAD) and run by its SHA (EVALSHA); after a
Redis restart the server answers NOSCRIPT and the script is loaded again. A
check that fails or outlasts the short deadline is answered by the fallback,
which allows each process its share of the limit. While degraded, a probe
pings Redis in the background and the shared limiter is used again as soon as
Redis answers; requests never wait on a dead Redis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import attr
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from crackershop.ratelimit import gcra
from crackershop.ratelimit.interfaces import Bucket, IRateLimiter, Outcome, Policy
from crackershop.ratelimit.memory import MemoryLimiter

log = Logger()

POOL_SIZE = 4
PROBE_INTERVAL = 0.5
RECONNECT_MAX_DELAY = 1.0
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


@implementer(IRateLimiter)
class RedisLimiter:
    """Checks in Redis, falls back to ``fallback`` (a per-process limiter
    given ``share`` of every limit) while Redis is unreachable."""

    def __init__(
        self,
        clock: IReactorTime,
        redis: Any,
        fallback: MemoryLimiter,
        share: int = 1,
        timeout: float = 0.25,
        describe: str = "Redis",
    ) -> None:
        self.clock = clock
        self.redis = redis
        self.fallback = fallback
        self.share = share
        self.timeout = timeout
        self.describe = describe
        self.degraded = False
        self._loaded = False
        self._probe: Any = None
        self._closed = False

    # -- checks

    def check(self, key: str, policies: Sequence[Policy], cost: int) -> Deferred[Outcome]:
        if self.degraded:
            return succeed(self._local(key, policies, cost))
        d = ensureDeferred(self._shared(key, policies, cost))
        d.addTimeout(self.timeout, self.clock)

        def failed(failure: Any) -> Outcome:
            self._outage(failure.value)
            return self._local(key, policies, cost)

        return d.addErrback(failed)

    async def _shared(self, key: str, policies: Sequence[Policy], cost: int) -> Outcome:
        # One hash tag per client: every key of a check lives in one cluster slot.
        keys = [f"rl:{{{key}}}:{policy.name}" for policy in policies]
        args: list[int] = [cost]
        for policy in policies:
            args += [policy.interval, policy.limit]
        if not self._loaded:
            await self._load()
        try:
            reply = await self.redis.evalsha(SHA, keys, args)
        except Exception as e:
            if not is_noscript(e):
                raise
            # Redis restarted (or its scripts were flushed): load it again.
            log.info("rate-limit script missing in Redis; loading it again")
            await self._load()
            reply = await self.redis.evalsha(SHA, keys, args)
        return parse_reply(reply, policies)

    async def _load(self) -> None:
        sha = await self.redis.script_load(gcra.LUA)
        if sha != SHA:
            raise RuntimeError(f"Redis named the script {sha}, expected {SHA}")
        self._loaded = True

    def _local(self, key: str, policies: Sequence[Policy], cost: int) -> Outcome:
        return self.fallback.check_now(key, [p.share(self.share) for p in policies], cost)

    # -- outage and recovery

    def _outage(self, error: BaseException) -> None:
        if self.degraded or self._closed:
            return
        self.degraded = True
        self._loaded = False
        log.warn(
            "Redis at {where} is not answering ({error}); rate limits fall back to "
            "this process ({share} share) until it does",
            where=self.describe,
            error=type(error).__name__,
            share="whole" if self.share <= 1 else f"1/{self.share}",
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
        self._closed = True
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        d: Deferred[None] = self.redis.disconnect()
        return d


def parse_reply(reply: Sequence[Any], policies: Sequence[Policy]) -> Outcome:
    values = [int(v) for v in reply]
    buckets = [
        Bucket(policy, values[1 + 3 * i], values[2 + 3 * i], values[3 + 3 * i])
        for i, policy in enumerate(policies)
    ]
    return Outcome(bool(values[0]), buckets, shared=True)


Readiness = Callable[[], Any]
