"""Rate limits per client IP: which limiter a process uses, built from config.

- ``REDIS_URL`` (or ``REDIS_HOST``) set: buckets in Redis, shared by every
  server using it, leased in small batches (:mod:`.redis`); while Redis does
  not answer, this server's own buckets stand in.
- No Redis, a cluster's worker: the buckets the server's workers share in
  memory (:mod:`.shared`).
- No Redis, a single process: the buckets in this process (:mod:`.memory`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional

import attr
from twisted.logger import Logger

from crackershop.config import Config, mask_uri
from crackershop.ratelimit.clientip import ClientAddress
from crackershop.ratelimit.guard import Policies, RateLimitGuard
from crackershop.ratelimit.interfaces import IRateLimiter, Policy
from crackershop.ratelimit.memory import MemoryLimiter

log = Logger()


@attr.s(auto_attribs=True)
class Limiting:
    limiter: Optional[IRateLimiter]
    guards: Sequence[Any] = ()
    readiness: Sequence[Callable[[], Any]] = ()


def policies(config: Config) -> Policies:
    window = config.rate_limit_window_ms / 1000
    return Policies(
        every=Policy("global", config.rate_limit_max_requests, window),
        writes=Policy("writes", config.rate_limit_write_max, window),
        auth=Policy("auth", config.rate_limit_auth_max, window),
    )


def redis_url(config: Config) -> str:
    if config.redis_url:
        return config.redis_url
    if config.redis_host:
        return f"redis://{config.redis_host}:{config.redis_port}/0"
    return ""


def make_limiting(reactor: Any, config: Config, table: Any = None) -> Limiting:
    """The limiter of one serving process. ``table``: the
    :class:`~crackershop.ratelimit.shared.BucketTable` a cluster's workers
    share (None in a single process)."""
    if not config.rate_limit_enabled:
        log.warn("rate limits are off (RATE_LIMIT_ENABLED=false)")
        return Limiting(None)
    rules = policies(config)
    local: Any
    if table is not None:
        from crackershop.ratelimit.shared import SharedLimiter

        local = SharedLimiter(reactor, table, rules.names)
        where = "in memory shared by this server's workers"
    else:
        local = MemoryLimiter(reactor)
        where = "in this process"
    limiter: IRateLimiter
    readiness: list[Callable[[], Any]] = []
    url = redis_url(config)
    if url:
        from crackershop.ratelimit.redis import RedisLimiter, connect, parse_address

        address = parse_address(url)
        limiter = RedisLimiter(
            reactor,
            connect(address, config.redis_timeout),
            local,
            timeout=config.redis_timeout,
            describe=address.describe(),
        )
        readiness.append(limiter.readiness)
        log.info("rate limits shared in Redis at {url}", url=mask_uri(url))
    else:
        limiter = local
        log.info("rate limits kept {where} (no REDIS_URL)", where=where)
    guard = RateLimitGuard(limiter, rules, ClientAddress(config.trusted_proxies))
    return Limiting(limiter, [guard], readiness)
