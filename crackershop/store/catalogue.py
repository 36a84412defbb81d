"""What customers read of the catalogue, served from a per-process cache
with bounded staleness.

The embedded database answers a few thousand simple queries a second, so
the public product list and product page cannot each cost a query or two.
Every serving process keeps the answers it fetched for at most ``ttl``
seconds, counted from the moment the fetch *started*: a write committed
before a fetch starts is in its answer, so any change (an admin's edit on
any server, a sale's stock move) is visible from every process within
``ttl`` of being committed. There is no invalidation message to lose.

Only customer reads come through here: the catalogue never answers with
an Inactive product, admins read the store directly, and placing an order
checks stock against the database (``IStore.stock``), never the cache.
Concurrent misses of one key share one fetch, so a cold or just-expired
key costs one query however many requests wait for it.
"""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import Awaitable, Hashable, Sequence
from typing import Any, Callable, Optional

from bson import ObjectId
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from crackershop.store.interfaces import Document, IStore, Page, ProductQuery

MAX_ENTRIES = 2048
MISSING: Any = object()


class ICatalogue(Interface):
    """Customer reads of the catalogue; possibly stale by up to the bound."""

    async def products(query: ProductQuery) -> Page:
        """One page of active products (the query must not include inactive ones)."""

    async def product(product_id: ObjectId) -> Optional[Document]:
        """The product unless it is missing or Inactive."""

    async def categories_by_ids(ids: Sequence[ObjectId]) -> builtins.list[Document]:
        """The categories among these ids (for naming a product's category)."""

    async def categories() -> builtins.list[Document]:
        """Active categories by name."""

    async def all_active(fields: Sequence[str]) -> builtins.list[Document]:
        """Every active product by name, holding only ``_id`` and ``fields``."""


class TtlCache:
    """Answers by key, each kept ``ttl`` seconds from when its fetch began;
    at most ``max_entries`` kept, least recently used dropped first.
    Failures are never kept."""

    def __init__(self, clock: IReactorTime, ttl: float, max_entries: int = MAX_ENTRIES) -> None:
        self.clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._pending: dict[Hashable, list[Deferred[Any]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: Hashable) -> Any:
        """The fresh answer for the key, or MISSING (cheaper than a Deferred)."""
        entry = self._entries.get(key)
        if entry is not None and self.clock.seconds() - entry[0] < self.ttl:
            self._entries.move_to_end(key)
            return entry[1]
        return MISSING

    def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Deferred[Any]:
        if self.ttl <= 0:
            return Deferred.fromCoroutine(_await(fetch()))
        now = self.clock.seconds()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            self._entries.move_to_end(key)
            return succeed(entry[1])
        waiter: Deferred[Any] = Deferred()
        waiting = self._pending.get(key)
        if waiting is not None:
            waiting.append(waiter)
            return waiter
        self._pending[key] = waiters = [waiter]

        def fetched(value: Any) -> None:
            del self._pending[key]
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            for w in waiters:
                w.callback(value)

        def failed(failure: Failure) -> None:
            del self._pending[key]
            for w in waiters:
                w.errback(failure)

        Deferred.fromCoroutine(_await(fetch())).addCallbacks(fetched, failed)
        return waiter


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


@implementer(ICatalogue)
class CachedCatalogue:
    """The catalogue over a store, each answer cached for ``ttl`` seconds
    (0 reads the store every time)."""

    def __init__(self, store: IStore, clock: IReactorTime, ttl: float) -> None:
        self.store = store
        self.cache = TtlCache(clock, ttl)

    async def products(self, query: ProductQuery) -> Page:
        if query.include_inactive:
            raise ValueError("the catalogue never lists inactive products")
        key = ("list", query)
        page: Page = self.cache.peek(key)
        if page is MISSING:
            page = await self.cache.get(key, lambda: self.store.products.list(query))
        return page

    async def product(self, product_id: ObjectId) -> Optional[Document]:
        async def fetch() -> Optional[Document]:
            doc: Optional[Document] = await self.store.products.get(product_id)
            if doc is None or doc.get("status") == "Inactive":
                return None
            return doc

        key = ("product", product_id)
        found: Optional[Document] = self.cache.peek(key)
        if found is MISSING:
            found = await self.cache.get(key, fetch)
        return found

    async def categories_by_ids(self, ids: Sequence[ObjectId]) -> builtins.list[Document]:
        wanted = tuple(sorted(set(ids)))
        key = ("categories", wanted)
        found: builtins.list[Document] = self.cache.peek(key)
        if found is MISSING:
            found = await self.cache.get(key, lambda: self.store.categories.by_ids(wanted))
        return found

    async def categories(self) -> builtins.list[Document]:
        key = ("categories",)
        found: builtins.list[Document] = self.cache.peek(key)
        if found is MISSING:
            found = await self.cache.get(
                key, lambda: self.store.categories.list(include_inactive=False)
            )
        return found

    async def all_active(self, fields: Sequence[str]) -> builtins.list[Document]:
        wanted = tuple(fields)
        key = ("all_active", wanted)
        found: builtins.list[Document] = self.cache.peek(key)
        if found is MISSING:
            found = await self.cache.get(key, lambda: self.store.products.all_active(wanted))
        return found
