"""In-memory repositories with the same behaviour as the MongoDB ones, for
unit tests. A shared contract test holds both to the same rules."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from bson import ObjectId
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from crackershop.errors import DuplicateKey
from crackershop.store.interfaces import (
    Document,
    ICategories,
    IProducts,
    IStore,
    IUsers,
    Page,
    ProductQuery,
)
from crackershop.store.products import SORT_FIELDS


class _Collection:
    unique: Sequence[str] = ()

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.docs: dict[ObjectId, Document] = {}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), tz=timezone.utc)

    def _check_unique(self, doc: Mapping[str, Any], exclude: Optional[ObjectId] = None) -> None:
        for field in self.unique:
            value = doc.get(field)
            if value is None:
                continue
            for other in self.docs.values():
                if other["_id"] != exclude and other.get(field) == value:
                    raise DuplicateKey(field)

    def _insert(self, doc: Mapping[str, Any]) -> Document:
        stored = copy.deepcopy(dict(doc))
        now = self._now()
        stored.setdefault("_id", ObjectId())
        stored.setdefault("createdAt", now)
        stored.setdefault("updatedAt", now)
        self._check_unique(stored)
        self.docs[stored["_id"]] = stored
        return copy.deepcopy(stored)

    def _get(self, doc_id: ObjectId) -> Optional[Document]:
        doc = self.docs.get(doc_id)
        return copy.deepcopy(doc) if doc is not None else None

    def _update(
        self,
        doc_id: ObjectId,
        changes: Mapping[str, Any],
        inc: Optional[Mapping[str, int]] = None,
    ) -> Optional[Document]:
        doc = self.docs.get(doc_id)
        if doc is None:
            return None
        updated = {**copy.deepcopy(doc), **copy.deepcopy(dict(changes)), "updatedAt": self._now()}
        for field, amount in (inc or {}).items():
            updated[field] = updated.get(field, 0) + amount
        self._check_unique(updated, exclude=doc_id)
        self.docs[doc_id] = updated
        return copy.deepcopy(updated)

    def _delete(self, doc_id: ObjectId) -> bool:
        return self.docs.pop(doc_id, None) is not None

    def _select(self, keep: Callable[[Document], bool]) -> list[Document]:
        return [copy.deepcopy(d) for d in self.docs.values() if keep(d)]


def _sorted(docs: Iterable[Document], order: Sequence[Any]) -> list[Document]:
    result = list(docs)
    for field, direction in reversed(order):
        result.sort(key=_sort_key_of(field), reverse=direction < 0)
    return result


def _sort_key_of(field: str) -> Callable[[Document], Any]:
    return lambda doc: _sort_key(doc.get(field))


def _sort_key(value: Any) -> Any:
    # MongoDB sorts missing values first and compares strings by code point.
    return (value is not None, value if value is not None else 0)


@implementer(IUsers)
class MemoryUsers(_Collection):
    unique = ("email",)

    async def create(self, doc: Mapping[str, Any]) -> Document:
        return self._insert(doc)

    async def get(self, user_id: ObjectId) -> Optional[Document]:
        return self._get(user_id)

    async def by_email(self, email: str) -> Optional[Document]:
        found = self._select(lambda d: d.get("email") == email)
        return found[0] if found else None

    async def by_reset_token(self, token_hash: str, now: Any) -> Optional[Document]:
        found = self._select(
            lambda d: (
                d.get("resetPasswordToken") == token_hash
                and d.get("resetPasswordExpire") is not None
                and d["resetPasswordExpire"] > now
            )
        )
        return found[0] if found else None

    async def update(
        self,
        user_id: ObjectId,
        changes: Mapping[str, Any],
        inc: Optional[Mapping[str, int]] = None,
    ) -> Optional[Document]:
        return self._update(user_id, changes, inc)

    async def delete(self, user_id: ObjectId) -> bool:
        return self._delete(user_id)

    async def list(self, page: int, limit: int) -> Page:
        docs = _sorted(self.docs.values(), [("createdAt", -1)])
        start = (page - 1) * limit
        return Page([copy.deepcopy(d) for d in docs[start : start + limit]], len(docs))


@implementer(ICategories)
class MemoryCategories(_Collection):
    unique = ("name",)

    async def create(self, doc: Mapping[str, Any]) -> Document:
        return self._insert(doc)

    async def get(self, category_id: ObjectId) -> Optional[Document]:
        return self._get(category_id)

    async def by_ids(self, ids: Sequence[ObjectId]) -> builtins.list[Document]:
        wanted = set(ids)
        return self._select(lambda d: d["_id"] in wanted)

    async def list(self, include_inactive: bool) -> builtins.list[Document]:
        docs = self._select(lambda d: include_inactive or d.get("status") != "Inactive")
        return _sorted(docs, [("name", 1)])

    async def update(self, category_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return self._update(category_id, changes)

    async def delete(self, category_id: ObjectId) -> bool:
        return self._delete(category_id)


def _matches(doc: Document, query: ProductQuery) -> bool:
    if not query.include_inactive and doc.get("status") == "Inactive":
        return False
    if query.category is not None and doc.get("category") != query.category:
        return False
    if query.featured and doc.get("isFeatured") is not True:
        return False
    if query.diwali_special and doc.get("isDiwaliSpecial") is not True:
        return False
    price = doc.get("price")
    if query.min_price is not None and not (price is not None and price >= query.min_price):
        return False
    if query.max_price is not None and not (price is not None and price <= query.max_price):
        return False
    if query.search:
        needle = query.search.casefold()
        fields = (doc.get("name"), doc.get("description"))
        if not any(isinstance(f, str) and needle in f.casefold() for f in fields):
            return False
    return True


@implementer(IProducts)
class MemoryProducts(_Collection):
    unique = ("sku",)

    async def create(self, doc: Mapping[str, Any]) -> Document:
        return self._insert(doc)

    async def get(self, product_id: ObjectId) -> Optional[Document]:
        return self._get(product_id)

    async def update(self, product_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return self._update(product_id, changes)

    async def delete(self, product_id: ObjectId) -> bool:
        return self._delete(product_id)

    async def list(self, query: ProductQuery) -> Page:
        docs = _sorted(self._select(lambda d: _matches(d, query)), SORT_FIELDS[query.sort])
        start = (query.page - 1) * query.limit
        return Page(docs[start : start + query.limit], len(docs))

    async def count_in_category(self, category_id: ObjectId) -> int:
        return len(self._select(lambda d: d.get("category") == category_id))


@implementer(IStore)
class MemoryStore:
    def __init__(self, clock: IReactorTime) -> None:
        self.users = MemoryUsers(clock)
        self.categories = MemoryCategories(clock)
        self.products = MemoryProducts(clock)
        self.available = True
        from crackershop.store.memory_orders import (
            MemoryIdempotency,
            MemoryOrders,
            MemorySettings,
            MemoryStock,
        )

        self.settings = MemorySettings(clock)
        self.orders = MemoryOrders(clock)
        self.stock = MemoryStock(self.products)
        self.idempotency = MemoryIdempotency(clock)

    async def ping(self) -> None:
        if not self.available:
            from crackershop.errors import DatabaseUnavailable

            raise DatabaseUnavailable()

    async def ensure_indexes(self) -> None:
        return None
