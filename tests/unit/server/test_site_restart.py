"""A site made again on a restart in place keeps its predecessor's rate
limiter (and every client's bucket) unless the limits changed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet.testing import MemoryReactorClock

from crackershop.config import load
from crackershop.server.site import make_site
from crackershop.store.memory import MemoryStore


class Reactor(MemoryReactorClock):
    def getThreadPool(self) -> Any:
        return None


def test_the_limiter_is_kept_unless_the_limits_change() -> None:
    """Same limits: the same limiter; new limits: a new one, the old closed later once."""
    reactor = Reactor()
    config, _ = load({}, {"JWT_SECRET": "s" * 40})
    store = MemoryStore(reactor)
    first = make_site(reactor, config, store)
    second = make_site(
        reactor, replace(config, allowed_origins=("https://a.example",)), store, previous=first
    )
    assert second.limiting is first.limiting and second.config.allowed_origins
    assert not first.requests._gauge.running and second.requests._gauge.running
    calls = len(reactor.getDelayedCalls())
    third = make_site(reactor, replace(config, rate_limit_max_requests=7), store, previous=second)
    assert third.limiting is not second.limiting
    assert len(reactor.getDelayedCalls()) == calls + 1  # the old limiter's close
    assert second.close_limiter() is not None  # closed now...
    assert second.close_limiter() is None  # ...and never again (at shutdown)
