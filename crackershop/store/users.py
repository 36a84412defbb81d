"""The ``users`` collection."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

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

    async def ensure_indexes(self) -> None:
        await self._index([("email", 1)], unique=True)
        await self._index([("resetPasswordToken", 1)], sparse=True)
        await self._index([("createdAt", -1)])
