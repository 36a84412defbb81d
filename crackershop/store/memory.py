"""In-memory repositories with the same behaviour as the MongoDB ones, for
unit tests. A shared contract test holds both to the same rules."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Optional

from bson import ObjectId
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from crackershop.clock import now_utc
from crackershop.errors import DuplicateKey
from crackershop.store.dashboard import MemoryDashboard
from crackershop.store.interfaces import (
    Document,
    IBanners,
    ICategories,
    IChit,
    INotifications,
    IProducts,
    IStore,
    IUsers,
    Page,
    ProductQuery,
)
from crackershop.store.products import SORT_FIELDS
from crackershop.store.uploads import MemoryUploads


class _Collection:
    # Each entry is a field, or a tuple of fields unique together; the
    # DuplicateKey names the entry's label (its first element for a field).
    unique: Sequence[Any] = ()
    label = ""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.docs: dict[ObjectId, Document] = {}

    def _check_unique(self, doc: Mapping[str, Any], exclude: Optional[ObjectId] = None) -> None:
        for spec in self.unique:
            fields = spec if isinstance(spec, tuple) else (spec,)
            values = [doc.get(f) for f in fields]
            if len(fields) == 1 and values[0] is None:
                continue
            for other in self.docs.values():
                if other["_id"] != exclude and [other.get(f) for f in fields] == values:
                    raise DuplicateKey(self.label or fields[0])

    def _insert(self, doc: Mapping[str, Any]) -> Document:
        stored = copy.deepcopy(dict(doc))
        now = now_utc(self.clock)
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
        updated = {
            **copy.deepcopy(doc),
            **copy.deepcopy(dict(changes)),
            "updatedAt": now_utc(self.clock),
        }
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

    async def by_ids(self, ids: Sequence[ObjectId]) -> builtins.list[Document]:
        wanted = set(ids)
        return self._select(lambda d: d["_id"] in wanted)

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

    async def ids_with_role(
        self, role: str, after: Optional[ObjectId], limit: int
    ) -> builtins.list[ObjectId]:
        ids = sorted(
            d["_id"]
            for d in self.docs.values()
            if d.get("role") == role
            and d.get("status", "Active") not in ("Blocked", "Inactive")
            and (after is None or d["_id"] > after)
        )
        return ids[:limit]

    def _addresses(
        self, user_id: ObjectId, change: Callable[[list[Document]], Optional[list[Document]]]
    ) -> Optional[Document]:
        doc = self.docs.get(user_id)
        if doc is None:
            return None
        changed = change(copy.deepcopy(list(doc.get("addresses") or [])))
        if changed is None:
            return None
        return self._update(user_id, {"addresses": changed})

    async def add_address(
        self, user_id: ObjectId, entry: Mapping[str, Any], limit: int
    ) -> Optional[Document]:
        def add(addresses: list[Document]) -> Optional[list[Document]]:
            if len(addresses) >= limit:
                return None
            default = bool(entry.get("isDefault")) or not any(
                a.get("isDefault") is True for a in addresses
            )
            kept = [
                {**a, "isDefault": a.get("isDefault") is True and not default} for a in addresses
            ]
            return [*kept, {**entry, "isDefault": default}]

        return self._addresses(user_id, add)

    async def set_default_address(
        self, user_id: ObjectId, address_id: ObjectId
    ) -> Optional[Document]:
        def choose(addresses: list[Document]) -> Optional[list[Document]]:
            if not any(a.get("_id") == address_id for a in addresses):
                return None
            return [{**a, "isDefault": a.get("_id") == address_id} for a in addresses]

        return self._addresses(user_id, choose)

    async def remove_address(self, user_id: ObjectId, address_id: ObjectId) -> Optional[Document]:
        def remove(addresses: list[Document]) -> Optional[list[Document]]:
            kept = [a for a in addresses if a.get("_id") != address_id]
            if len(kept) == len(addresses):
                return None
            if kept and not any(a.get("isDefault") is True for a in kept):
                kept[0] = {**kept[0], "isDefault": True}
            return kept

        return self._addresses(user_id, remove)

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

    async def all_active(self, fields: Sequence[str]) -> builtins.list[Document]:
        docs = self._select(lambda d: d.get("status") != "Inactive")
        return [
            {k: v for k, v in d.items() if k == "_id" or k in fields}
            for d in _sorted(docs, [("name", 1), ("_id", 1)])
        ]

    async def count_in_category(self, category_id: ObjectId) -> int:
        return len(self._select(lambda d: d.get("category") == category_id))


@implementer(IBanners)
class MemoryBanners(_Collection):
    async def create(self, doc: Mapping[str, Any]) -> Document:
        return self._insert(doc)

    async def get(self, banner_id: ObjectId) -> Optional[Document]:
        return self._get(banner_id)

    async def update(self, banner_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return self._update(banner_id, changes)

    async def delete(self, banner_id: ObjectId) -> bool:
        return self._delete(banner_id)

    async def list(self, include_inactive: bool) -> builtins.list[Document]:
        docs = self._select(lambda d: include_inactive or d.get("status") != "Inactive")
        return _sorted(docs, [("createdAt", -1), ("_id", -1)])


@implementer(INotifications)
class MemoryNotifications(_Collection):
    async def create_many(self, docs: Sequence[Mapping[str, Any]]) -> int:
        for doc in docs:
            self._insert({"isRead": False, **doc})
        return len(docs)

    async def list_for(self, user: ObjectId, limit: int) -> tuple[builtins.list[Document], int]:
        mine = self._select(lambda d: d.get("user") == user)
        unread = sum(1 for d in mine if not d.get("isRead"))
        return _sorted(mine, [("createdAt", -1), ("_id", -1)])[:limit], unread

    async def mark_read(self, user: ObjectId, notification_id: ObjectId) -> Optional[Document]:
        doc = self.docs.get(notification_id)
        if doc is None or doc.get("user") != user:
            return None
        return self._update(notification_id, {"isRead": True})

    async def mark_all_read(self, user: ObjectId) -> int:
        changed = [
            d["_id"] for d in self.docs.values() if d.get("user") == user and not d.get("isRead")
        ]
        for doc_id in changed:
            self._update(doc_id, {"isRead": True})
        return len(changed)

    async def delete(self, user: ObjectId, notification_id: ObjectId) -> bool:
        doc = self.docs.get(notification_id)
        if doc is None or doc.get("user") != user:
            return False
        return self._delete(notification_id)


class _Members(_Collection):
    unique = (("user", "scheme"),)
    label = "member"


class _Payments(_Collection):
    unique = (("user", "scheme", "monthIndex"),)
    label = "monthIndex"


@implementer(IChit)
class MemoryChit:
    def __init__(self, clock: IReactorTime) -> None:
        self.schemes = _Collection(clock)
        self.members = _Members(clock)
        self.paid = _Payments(clock)

    async def create_scheme(self, doc: Mapping[str, Any]) -> Document:
        return self.schemes._insert(doc)

    async def get_scheme(self, scheme_id: ObjectId) -> Optional[Document]:
        return self.schemes._get(scheme_id)

    async def list_schemes(self) -> builtins.list[Document]:
        return _sorted(self.schemes._select(lambda d: True), [("createdAt", -1), ("_id", -1)])

    async def update_scheme(
        self, scheme_id: ObjectId, changes: Mapping[str, Any]
    ) -> Optional[Document]:
        return self.schemes._update(scheme_id, changes)

    async def delete_scheme(self, scheme_id: ObjectId) -> bool:
        return self.schemes._delete(scheme_id)

    async def add_member(self, doc: Mapping[str, Any]) -> Document:
        return self.members._insert(doc)

    async def member(self, user: ObjectId, scheme: ObjectId) -> Optional[Document]:
        found = self.members._select(lambda d: d["user"] == user and d["scheme"] == scheme)
        return found[0] if found else None

    async def set_member_status(
        self, user: ObjectId, scheme: ObjectId, allowed: Sequence[str], status: str
    ) -> Optional[Document]:
        found = await self.member(user, scheme)
        if found is None or found.get("status") not in allowed:
            return None
        return self.members._update(found["_id"], {"status": status})

    async def members_of(self, scheme: ObjectId) -> builtins.list[Document]:
        found = self.members._select(lambda d: d["scheme"] == scheme)
        return _sorted(found, [("createdAt", 1), ("_id", 1)])

    async def memberships_of(self, user: ObjectId) -> builtins.list[Document]:
        found = self.members._select(lambda d: d["user"] == user)
        return _sorted(found, [("createdAt", 1), ("_id", 1)])

    async def add_payment(self, doc: Mapping[str, Any]) -> Document:
        return self.paid._insert(doc)

    async def payments(
        self, scheme: ObjectId, user: Optional[ObjectId] = None
    ) -> builtins.list[Document]:
        found = self.paid._select(
            lambda d: d["scheme"] == scheme and (user is None or d["user"] == user)
        )
        return _sorted(found, [("monthIndex", 1), ("_id", 1)])


@implementer(IStore)
class MemoryStore:
    def __init__(self, clock: IReactorTime) -> None:
        self.users = MemoryUsers(clock)
        self.categories = MemoryCategories(clock)
        self.products = MemoryProducts(clock)
        self.banners = MemoryBanners(clock)
        self.notifications = MemoryNotifications(clock)
        self.chit = MemoryChit(clock)
        self.uploads = MemoryUploads()
        self.dashboard = MemoryDashboard(self)
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
        return None

    async def ensure_indexes(self) -> None:
        return None
