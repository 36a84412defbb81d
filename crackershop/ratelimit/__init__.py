"""Rate limits per client IP: which limiter a process uses, built from config.

- ``REDIS_URL`` (or ``REDIS_HOST``) set: the shared Redis limiter, falling back
  to this process's share of each limit while Redis does not answer.
- No Redis and a single process: the in-process limiter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional

import attr
from twisted.logger import Logger

from crackershop.config import Config, mask_uri, worker_count
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

    def divide(self, parts: int) -> None:
        """While Redis does not answer, this process allows 1/``parts`` of
        every limit (a cluster worker is told how many workers there are)."""
        from crackershop.ratelimit.redis import RedisLimiter

        if isinstance(self.limiter, RedisLimiter):
            self.limiter.share = max(1, parts)


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


def make_limiting(reactor: Any, config: Config) -> Limiting:
    if not config.rate_limit_enabled:
        log.warn("rate limits are off (RATE_LIMIT_ENABLED=false)")
        return Limiting(None)
    url = redis_url(config)
    fallback = MemoryLimiter(reactor)
    limiter: IRateLimiter
    readiness: list[Callable[[], Any]] = []
    if url:
        from crackershop.ratelimit.redis import RedisLimiter, connect, parse_address

        address = parse_address(url)
        limiter = RedisLimiter(
            reactor,
            connect(address, config.redis_timeout),
            fallback,
            share=worker_count(config),
            timeout=config.redis_timeout,
            describe=address.describe(),
        )
        readiness.append(limiter.readiness)
        log.info("rate limits shared in Redis at {url}", url=mask_uri(url))
    else:
        limiter = fallback
        log.info("rate limits kept in this process (no REDIS_URL)")
    guard = RateLimitGuard(limiter, policies(config), ClientAddress(config.trusted_proxies))
    return Limiting(limiter, [guard], readiness)
