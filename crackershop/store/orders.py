"""The ``orders`` and ``idempotency`` collections, and stock moves on
``products``.

Every stock move is a single guarded update of one product document that
also pushes (or pulls) the order's id on ``reservedBy``/``returnedBy``. The
guard and the record change in the same atomic write, so a move can never be
applied twice, and a crash between two moves leaves a record that the repair
sweep (:mod:`crackershop.orders.repair`) can act on.

Updates check the modified count rather than a find-and-modify's returned
document: the embedded database may return a stale "before" document under
concurrency, but its modified count is exact.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.clock import now_utc
from crackershop.errors import DuplicateKey
from crackershop.orders.idempotency import IDEMPOTENCY_TTL
from crackershop.orders.states import CANCELLED, FAILED, HIDDEN, RESERVING
from crackershop.store.interfaces import Document, IIdempotency, IOrders, IStock, Page
from crackershop.store.mongo import Repository


@implementer(IOrders)
class MongoOrders(Repository):
    name = "orders"

    async def insert(self, doc: Mapping[str, Any]) -> Document:
        return await self._insert(doc)

    async def get(self, order_id: ObjectId) -> Optional[Document]:
        return await self._get(order_id)

    async def for_user(self, user_id: ObjectId) -> builtins.list[Document]:
        return await self._find(
            {"user": user_id, "orderStatus": {"$nin": list(HIDDEN)}},
            [("createdAt", -1), ("_id", -1)],
        )

    async def list(self, page: int, limit: int, status: Optional[str]) -> Page:
        filter: dict[str, Any] = {"orderStatus": {"$nin": list(HIDDEN)}}
        if status is not None:
            filter = {"orderStatus": status}
        items = await self._find(
            filter, [("createdAt", -1), ("_id", -1)], (page - 1) * limit, limit
        )
        return Page(items, await self._count(filter))

    async def transition(
        self, order_id: ObjectId, current: str, changes: Mapping[str, Any]
    ) -> bool:
        update = {"$set": {**changes, "updatedAt": now_utc(self.mongo.clock)}}
        result = await self.mongo.run(
            lambda: self.coll.update_one({"_id": order_id, "orderStatus": current}, update)
        )
        return bool(result.modified_count)

    async def update(self, order_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return await self._update({"_id": order_id}, changes)

    async def delete(self, order_id: ObjectId) -> bool:
        return await self._delete(order_id)

    async def unfinished(self, before: Any) -> builtins.list[Document]:
        return await self._find(
            {
                "$or": [
                    {"orderStatus": RESERVING},
                    {"orderStatus": FAILED, "released": False},
                    {"orderStatus": CANCELLED, "stockReturned": False},
                ],
                "updatedAt": {"$lt": before},
            },
            [("updatedAt", 1)],
            limit=500,
        )

    async def expire_released(self, expire_at: Any) -> int:
        filter = {"orderStatus": FAILED, "released": True, "expireAt": {"$exists": False}}
        result = await self.mongo.run(
            lambda: self.coll.update_many(filter, {"$set": {"expireAt": expire_at}})
        )
        return int(result.modified_count)

    async def ensure_indexes(self) -> None:
        await self._index([("user", 1), ("createdAt", -1)])
        await self._index([("orderStatus", 1), ("createdAt", -1)])
        await self._index([("createdAt", -1)])
        await self._index([("orderStatus", 1), ("updatedAt", 1)])
        # only failed placements have expireAt (placing.Reservations.abandon)
        await self._index([("expireAt", 1)], expireAfterSeconds=0)


@implementer(IStock)
class MongoStock(Repository):
    name = "products"

    async def by_ids(self, ids: Sequence[ObjectId]) -> builtins.list[Document]:
        return await self._find({"_id": {"$in": list(ids)}}, [("_id", 1)])

    async def available(self, product_id: ObjectId) -> int:
        doc = await self._get(product_id)
        quantity = (doc or {}).get("quantity")
        return int(quantity) if isinstance(quantity, (int, float)) else 0

    async def _modified(self, filter: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
        result = await self.mongo.run(lambda: self.coll.update_one(filter, update))
        return bool(result.modified_count)

    async def reserve(self, product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        return await self._modified(
            {"_id": product_id, "quantity": {"$gte": qty}, "reservedBy": {"$ne": order_id}},
            {"$inc": {"quantity": -qty}, "$push": {"reservedBy": order_id}},
        )

    async def unreserve(self, product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        return await self._modified(
            {"_id": product_id, "reservedBy": order_id},
            {"$inc": {"quantity": qty}, "$pull": {"reservedBy": order_id}},
        )

    async def settle(self, product_id: ObjectId, order_id: ObjectId) -> None:
        await self._modified(
            {"_id": product_id, "reservedBy": order_id}, {"$pull": {"reservedBy": order_id}}
        )

    async def restock(self, product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        return await self._modified(
            {"_id": product_id, "returnedBy": {"$ne": order_id}},
            {"$inc": {"quantity": qty}, "$push": {"returnedBy": order_id}},
        )

    async def settle_restock(self, product_id: ObjectId, order_id: ObjectId) -> None:
        await self._modified(
            {"_id": product_id, "returnedBy": order_id}, {"$pull": {"returnedBy": order_id}}
        )

    async def marked(self) -> builtins.list[Document]:
        docs = await self._find(
            {"$or": [{"reservedBy.0": {"$exists": True}}, {"returnedBy.0": {"$exists": True}}]},
            [("_id", 1)],
            limit=500,
        )
        return [
            {
                "_id": d["_id"],
                "reservedBy": list(d.get("reservedBy") or []),
                "returnedBy": list(d.get("returnedBy") or []),
            }
            for d in docs
        ]

    async def ensure_indexes(self) -> None:
        await self._index([("reservedBy", 1)], sparse=True)
        await self._index([("returnedBy", 1)], sparse=True)


@implementer(IIdempotency)
class MongoIdempotency(Repository):
    name = "idempotency"
    unique = "key"

    async def claim(self, record: Mapping[str, Any]) -> Optional[Document]:
        try:
            await self._insert(record)
        except DuplicateKey:
            docs = await self._find(
                {"user": record["user"], "key": record["key"]}, [("_id", 1)], limit=1
            )
            if docs:
                return docs[0]
            # it expired between the insert and the read: try once more
            await self._insert(record)
        return None

    async def complete(self, record_id: ObjectId, status: int, body: str) -> None:
        await self._update({"_id": record_id}, {"state": "done", "status": status, "body": body})

    async def mark_unknown(self, record_id: ObjectId) -> None:
        await self._update({"_id": record_id, "state": "running"}, {"unknown": True})

    async def drop(self, record_id: ObjectId, running_only: bool) -> bool:
        filter: dict[str, Any] = {"_id": record_id}
        if running_only:
            filter["state"] = "running"
        result = await self.mongo.run(lambda: self.coll.delete_one(filter))
        return bool(result.deleted_count)

    async def ensure_indexes(self) -> None:
        await self._index([("user", 1), ("key", 1)], unique=True)
        await self._index([("createdAt", 1)], expireAfterSeconds=IDEMPOTENCY_TTL)
