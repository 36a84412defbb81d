"""In-memory twins of the settings, orders, stock and idempotency stores,
held to the same contract as the MongoDB ones."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.clock import now_utc
from crackershop.orders.states import CANCELLED, FAILED, HIDDEN, RESERVING
from crackershop.store.interfaces import (
    Document,
    IIdempotency,
    IOrders,
    ISettings,
    IStock,
    Page,
)
from crackershop.store.memory import _Collection, _sorted
from crackershop.store.settings import DEFAULTS, SETTINGS_ID, with_defaults


@implementer(ISettings)
class MemorySettings(_Collection):
    async def get(self) -> Document:
        if not self.docs:
            self._insert({"_id": SETTINGS_ID, **copy.deepcopy(DEFAULTS)})
        first = _sorted(self.docs.values(), [("_id", 1)])[0]
        return with_defaults(copy.deepcopy(first))

    async def update(self, changes: Mapping[str, Mapping[str, Any]]) -> Document:
        current = await self.get()
        doc = self.docs[current["_id"]]
        for part, values in changes.items():
            given = doc.get(part)
            doc[part] = {**(given if isinstance(given, Mapping) else {}), **copy.deepcopy(values)}
        doc["updatedAt"] = now_utc(self.clock)
        return await self.get()


def _newest(docs: builtins.list[Document]) -> builtins.list[Document]:
    return _sorted(docs, [("createdAt", -1), ("_id", -1)])


@implementer(IOrders)
class MemoryOrders(_Collection):
    def _expire(self) -> None:
        """What MongoDB's TTL monitor does: drop documents past ``expireAt``."""
        now = now_utc(self.clock)
        for doc_id in [k for k, d in self.docs.items() if d.get("expireAt", now) < now]:
            del self.docs[doc_id]

    async def insert(self, doc: Mapping[str, Any]) -> Document:
        return self._insert(doc)

    async def get(self, order_id: ObjectId) -> Optional[Document]:
        self._expire()
        return self._get(order_id)

    async def for_user(self, user_id: ObjectId) -> builtins.list[Document]:
        return _newest(
            self._select(lambda d: d.get("user") == user_id and d.get("orderStatus") not in HIDDEN)
        )

    async def list(self, page: int, limit: int, status: Optional[str]) -> Page:
        self._expire()
        docs = _newest(
            self._select(
                lambda d: (
                    d.get("orderStatus") == status
                    if status is not None
                    else d.get("orderStatus") not in HIDDEN
                )
            )
        )
        start = (page - 1) * limit
        return Page(docs[start : start + limit], len(docs))

    async def transition(
        self, order_id: ObjectId, current: str, changes: Mapping[str, Any]
    ) -> bool:
        self._expire()
        doc = self.docs.get(order_id)
        if doc is None or doc.get("orderStatus") != current:
            return False
        self._update(order_id, changes)
        return True

    async def update(self, order_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return self._update(order_id, changes)

    async def delete(self, order_id: ObjectId) -> bool:
        return self._delete(order_id)

    async def unfinished(self, before: Any) -> builtins.list[Document]:
        self._expire()

        def owes(d: Document) -> bool:
            status = d.get("orderStatus")
            return (
                status == RESERVING
                or (status == FAILED and d.get("released") is False)
                or (status == CANCELLED and d.get("stockReturned") is False)
            ) and d["updatedAt"] < before

        return _sorted(self._select(owes), [("updatedAt", 1)])

    async def expire_released(self, expire_at: Any) -> int:
        found = [
            d
            for d in self.docs.values()
            if d.get("orderStatus") == FAILED and d.get("released") is True and "expireAt" not in d
        ]
        for doc in found:
            doc["expireAt"] = expire_at
        return len(found)


@implementer(IStock)
class MemoryStock:
    """Stock moves on the in-memory products' documents."""

    def __init__(self, products: _Collection) -> None:
        self.products = products

    def _doc(self, product_id: ObjectId) -> Optional[Document]:
        return self.products.docs.get(product_id)

    async def by_ids(self, ids: Sequence[ObjectId]) -> builtins.list[Document]:
        wanted = set(ids)
        return _sorted(self.products._select(lambda d: d["_id"] in wanted), [("_id", 1)])

    async def available(self, product_id: ObjectId) -> int:
        quantity = (self._doc(product_id) or {}).get("quantity")
        return int(quantity) if isinstance(quantity, (int, float)) else 0

    async def reserve(self, product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        doc = self._doc(product_id)
        if doc is None or order_id in doc.get("reservedBy", []):
            return False
        quantity = doc.get("quantity")
        if not isinstance(quantity, (int, float)) or quantity < qty:
            return False
        doc["quantity"] = quantity - qty
        doc.setdefault("reservedBy", []).append(order_id)
        return True

    async def unreserve(self, product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        doc = self._doc(product_id)
        if doc is None or order_id not in doc.get("reservedBy", []):
            return False
        doc["quantity"] = doc.get("quantity", 0) + qty
        doc["reservedBy"] = [o for o in doc["reservedBy"] if o != order_id]
        return True

    async def settle(self, product_id: ObjectId, order_id: ObjectId) -> None:
        doc = self._doc(product_id)
        if doc is not None and "reservedBy" in doc:
            doc["reservedBy"] = [o for o in doc["reservedBy"] if o != order_id]

    async def restock(self, product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        doc = self._doc(product_id)
        if doc is None or order_id in doc.get("returnedBy", []):
            return False
        doc["quantity"] = doc.get("quantity", 0) + qty
        doc.setdefault("returnedBy", []).append(order_id)
        return True

    async def settle_restock(self, product_id: ObjectId, order_id: ObjectId) -> None:
        doc = self._doc(product_id)
        if doc is not None and "returnedBy" in doc:
            doc["returnedBy"] = [o for o in doc["returnedBy"] if o != order_id]

    async def marked(self) -> builtins.list[Document]:
        docs = self.products._select(lambda d: bool(d.get("reservedBy") or d.get("returnedBy")))
        return [
            {
                "_id": d["_id"],
                "reservedBy": list(d.get("reservedBy") or []),
                "returnedBy": list(d.get("returnedBy") or []),
            }
            for d in _sorted(docs, [("_id", 1)])
        ]


@implementer(IIdempotency)
class MemoryIdempotency(_Collection):
    async def claim(self, record: Mapping[str, Any]) -> Optional[Document]:
        for doc in self.docs.values():
            if doc["user"] == record["user"] and doc["key"] == record["key"]:
                return copy.deepcopy(doc)
        self._insert(record)
        return None

    async def complete(self, record_id: ObjectId, status: int, body: str) -> None:
        self._update(record_id, {"state": "done", "status": status, "body": body})

    async def mark_unknown(self, record_id: ObjectId) -> None:
        doc = self.docs.get(record_id)
        if doc is not None and doc.get("state") == "running":
            self._update(record_id, {"unknown": True})

    async def drop(self, record_id: ObjectId, running_only: bool) -> bool:
        doc = self.docs.get(record_id)
        if doc is None or (running_only and doc.get("state") != "running"):
            return False
        return self._delete(record_id)
