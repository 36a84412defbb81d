"""The ``users`` collection."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.clock import now_utc
from crackershop.store.interfaces import Document, IUsers, Page
from crackershop.store.mongo import Repository, order_by


@implementer(IUsers)
class MongoUsers(Repository):
    name = "users"
    unique = "email"

    async def create(self, doc: Mapping[str, Any]) -> Document:
        return await self._insert(doc)

    async def get(self, user_id: ObjectId) -> Optional[Document]:
        return await self._get(user_id)

    async def by_email(self, email: str) -> Optional[Document]:
        docs = await self._find({"email": email}, [("_id", 1)], limit=1)
        return docs[0] if docs else None

    async def by_ids(self, ids: Sequence[ObjectId]) -> builtins.list[Document]:
        return await self._find({"_id": {"$in": list(ids)}}, [("_id", 1)])

    async def by_reset_token(self, token_hash: str, now: Any) -> Optional[Document]:
        docs = await self._find(
            {"resetPasswordToken": token_hash, "resetPasswordExpire": {"$gt": now}},
            [("_id", 1)],
            limit=1,
        )
        return docs[0] if docs else None

    async def update(
        self,
        user_id: ObjectId,
        changes: Mapping[str, Any],
        inc: Optional[Mapping[str, int]] = None,
    ) -> Optional[Document]:
        return await self._update({"_id": user_id}, changes, inc)

    async def delete(self, user_id: ObjectId) -> bool:
        return await self._delete(user_id)

    async def list(self, page: int, limit: int) -> Page:
        items = await self._find({}, [("createdAt", -1)], (page - 1) * limit, limit)
        return Page(items, await self._count({}))

    async def ids_with_role(
        self, role: str, after: Optional[ObjectId], limit: int
    ) -> builtins.list[ObjectId]:
        filter: dict[str, Any] = {"role": role, "status": {"$nin": ["Blocked", "Inactive"]}}
        if after is not None:
            filter["_id"] = {"$gt": after}
        docs = await self.mongo.run(
            lambda: self.coll.find(
                filter, projection={"_id": True}, limit=limit, sort=order_by([("_id", 1)])
            )
        )
        return [d["_id"] for d in docs]

    # Saved addresses change by one pipeline update each, computed on the
    # stored array, so concurrent edits from any number of workers never
    # overwrite each other (no read-modify-write of a copy).

    async def _write_then_read(
        self, filter: Mapping[str, Any], pipeline: builtins.list[Any]
    ) -> Optional[Document]:
        stamped = [*pipeline, {"$set": {"updatedAt": now_utc(self.mongo.clock)}}]
        result = await self.mongo.run(lambda: self.coll.update_one(filter, stamped))
        if not result.matched_count:
            return None
        return await self._get(filter["_id"])

    async def add_address(
        self, user_id: ObjectId, entry: Mapping[str, Any], limit: int
    ) -> Optional[Document]:
        current = {"$ifNull": ["$addresses", []]}
        becomes_default = {"$or": [bool(entry.get("isDefault")), {"$not": [_any_default(current)]}]}
        added = {k: v for k, v in entry.items() if k != "isDefault"}
        pipeline = [
            {
                "$set": {
                    "addresses": {
                        "$let": {
                            "vars": {"default": becomes_default, "current": current},
                            "in": {
                                "$concatArrays": [
                                    {
                                        "$map": {
                                            "input": "$$current",
                                            "in": _with_default(
                                                {
                                                    "$and": [
                                                        {"$eq": ["$$this.isDefault", True]},
                                                        {"$not": ["$$default"]},
                                                    ]
                                                }
                                            ),
                                        }
                                    },
                                    [
                                        {
                                            "$mergeObjects": [
                                                {"$literal": added},
                                                {"isDefault": "$$default"},
                                            ]
                                        }
                                    ],
                                ]
                            },
                        }
                    }
                }
            }
        ]
        return await self._write_then_read(
            {"_id": user_id, f"addresses.{limit - 1}": {"$exists": False}}, pipeline
        )

    async def set_default_address(
        self, user_id: ObjectId, address_id: ObjectId
    ) -> Optional[Document]:
        pipeline = [
            {
                "$set": {
                    "addresses": {
                        "$map": {
                            "input": "$addresses",
                            "in": _with_default({"$eq": ["$$this._id", address_id]}),
                        }
                    }
                }
            }
        ]
        return await self._write_then_read({"_id": user_id, "addresses._id": address_id}, pipeline)

    async def remove_address(self, user_id: ObjectId, address_id: ObjectId) -> Optional[Document]:
        kept = {"$filter": {"input": "$addresses", "cond": {"$ne": ["$$this._id", address_id]}}}
        first_becomes_default = {
            "$concatArrays": [
                [{"$mergeObjects": [{"$arrayElemAt": ["$addresses", 0]}, {"isDefault": True}]}],
                {"$slice": ["$addresses", 1, {"$max": [{"$size": "$addresses"}, 1]}]},
            ]
        }
        pipeline = [
            {"$set": {"addresses": kept}},
            {
                "$set": {
                    "addresses": {
                        "$cond": [
                            {
                                "$and": [
                                    {"$gt": [{"$size": "$addresses"}, 0]},
                                    {"$not": [_any_default("$addresses")]},
                                ]
                            },
                            first_becomes_default,
                            "$addresses",
                        ]
                    }
                }
            },
        ]
        return await self._write_then_read({"_id": user_id, "addresses._id": address_id}, pipeline)

    async def ensure_indexes(self) -> None:
        await self._index([("email", 1)], unique=True)
        await self._index([("resetPasswordToken", 1)], sparse=True)
        await self._index([("createdAt", -1)])


def _any_default(addresses: Any) -> dict[str, Any]:
    return {
        "$anyElementTrue": [
            {"$map": {"input": addresses, "in": {"$eq": ["$$this.isDefault", True]}}}
        ]
    }


def _with_default(is_default: Any) -> dict[str, Any]:
    """One address (``$$this``) with ``isDefault`` set to the expression."""
    return {"$mergeObjects": ["$$this", {"isDefault": is_default}]}
