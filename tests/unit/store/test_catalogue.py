"""The catalogue cache: answers are reused for at most the staleness bound,
never show an Inactive product, share one fetch, and keep no failures."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from crackershop.store.catalogue import CachedCatalogue, TtlCache
from crackershop.store.interfaces import ProductQuery
from crackershop.store.memory import MemoryStore


def run(coro: Any) -> Any:
    results: list[Any] = []
    ensureDeferred(coro).addBoth(results.append)
    assert results, "did not finish synchronously"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


class World:
    def __init__(self, ttl: float = 1.0) -> None:
        self.clock = Clock()
        self.clock.advance(1_790_000_000)
        self.store = MemoryStore(self.clock)
        self.catalogue = CachedCatalogue(self.store, self.clock, ttl)
        self.p = run(self.store.products.create({"name": "Sparkler", "price": 10, "quantity": 5}))

    def quantity(self) -> Any:
        found = run(self.catalogue.product(self.p["_id"]))
        return found and found["quantity"]


def test_a_change_is_seen_once_the_bound_has_passed_and_not_before() -> None:
    """Within the bound the cached answer is reused; at the bound it is fetched again."""
    w = World(ttl=1.0)
    assert w.quantity() == 5
    run(w.store.products.update(w.p["_id"], {"quantity": 3}))
    w.clock.advance(0.99)
    assert w.quantity() == 5
    w.clock.advance(0.01)
    assert w.quantity() == 3


def test_all_active_products_are_kept_for_the_bound() -> None:
    """The whole active catalogue (for price lists) is one cached read, with the same bound."""
    w = World(ttl=1.0)
    assert [p["name"] for p in run(w.catalogue.all_active(("name",)))] == ["Sparkler"]
    run(w.store.products.update(w.p["_id"], {"status": "Inactive"}))
    assert len(run(w.catalogue.all_active(("name",)))) == 1
    w.clock.advance(1.0)
    assert run(w.catalogue.all_active(("name",))) == []


def test_lists_expire_like_single_products() -> None:
    """A product list's answer is also kept only for the bound."""
    w = World(ttl=1.0)
    query = ProductQuery()
    assert run(w.catalogue.products(query)).total == 1
    run(w.store.products.create({"name": "Rocket", "price": 20, "quantity": 1}))
    assert run(w.catalogue.products(query)).total == 1
    w.clock.advance(1.0)
    assert run(w.catalogue.products(query)).total == 2


def test_inactive_products_are_never_answered() -> None:
    """A product made Inactive disappears from the catalogue within the bound."""
    w = World(ttl=1.0)
    assert w.quantity() == 5
    run(w.store.products.update(w.p["_id"], {"status": "Inactive"}))
    w.clock.advance(1.0)
    assert run(w.catalogue.product(w.p["_id"])) is None
    assert run(w.catalogue.products(ProductQuery())).total == 0


def test_the_catalogue_refuses_a_query_for_inactive_products() -> None:
    """Admin queries (inactive included) cannot be answered from the cache."""
    w = World()
    with pytest.raises(ValueError):
        run(w.catalogue.products(ProductQuery(include_inactive=True)))


def test_a_zero_bound_reads_the_store_every_time() -> None:
    """With the cache off every read sees the latest write at once."""
    w = World(ttl=0)
    assert w.quantity() == 5
    run(w.store.products.update(w.p["_id"], {"quantity": 4}))
    assert w.quantity() == 4


def test_concurrent_misses_share_one_fetch_and_failures_are_not_kept() -> None:
    """Waiters of one key get one fetch's answer; a failed fetch is retried next time."""
    cache = TtlCache(Clock(), ttl=1.0)
    pending: list[Deferred[Any]] = []
    calls = []

    async def fetch() -> Any:
        calls.append(1)
        d: Deferred[Any] = Deferred()
        pending.append(d)
        return await d

    got: list[Any] = []
    cache.get("k", fetch).addBoth(got.append)
    cache.get("k", fetch).addBoth(got.append)
    assert len(calls) == 1
    pending[0].errback(RuntimeError("database away"))
    assert len(got) == 2 and all(hasattr(g, "check") for g in got)
    cache.get("k", fetch).addBoth(got.append)
    assert len(calls) == 2
    pending[1].callback("answer")
    assert got[2] == "answer"
    cache.get("k", fetch).addBoth(got.append)
    assert got[3] == "answer" and len(calls) == 2


def test_the_cache_keeps_at_most_its_size() -> None:
    """The least recently used keys are dropped beyond the size limit."""
    cache = TtlCache(Clock(), ttl=10.0, max_entries=3)

    async def value(k: int) -> int:
        return k

    for k in range(5):
        cache.get(k, lambda k=k: value(k))  # type: ignore[misc]
    assert len(cache) == 3
