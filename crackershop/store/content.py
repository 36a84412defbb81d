"""The ``banners`` and ``notifications`` collections."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.clock import now_utc
from crackershop.store.interfaces import Document, IBanners, INotifications
from crackershop.store.mongo import Repository


@implementer(IBanners)
class MongoBanners(Repository):
    name = "banners"

    async def create(self, doc: Mapping[str, Any]) -> Document:
        return await self._insert(doc)

    async def get(self, banner_id: ObjectId) -> Optional[Document]:
        return await self._get(banner_id)

    async def update(self, banner_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return await self._update({"_id": banner_id}, changes)

    async def delete(self, banner_id: ObjectId) -> bool:
        return await self._delete(banner_id)

    async def list(self, include_inactive: bool) -> builtins.list[Document]:
        filter = {} if include_inactive else {"status": {"$ne": "Inactive"}}
        return await self._find(filter, [("createdAt", -1), ("_id", -1)])

    async def ensure_indexes(self) -> None:
        await self._index([("createdAt", -1)])


@implementer(INotifications)
class MongoNotifications(Repository):
    name = "notifications"

    async def create_many(self, docs: Sequence[Mapping[str, Any]]) -> int:
        if not docs:
            return 0
        now = now_utc(self.mongo.clock)
        stamped = [
            {"_id": ObjectId(), "isRead": False, "createdAt": now, "updatedAt": now, **d}
            for d in docs
        ]
        await self.mongo.run(lambda: self.coll.insert_many(stamped, ordered=False))
        return len(stamped)

    async def list_for(self, user: ObjectId, limit: int) -> tuple[builtins.list[Document], int]:
        items = await self._find({"user": user}, [("createdAt", -1), ("_id", -1)], 0, limit)
        unread = await self._count({"user": user, "isRead": False})
        return items, unread

    async def mark_read(self, user: ObjectId, notification_id: ObjectId) -> Optional[Document]:
        return await self._update({"_id": notification_id, "user": user}, {"isRead": True})

    async def mark_all_read(self, user: ObjectId) -> int:
        result = await self.mongo.run(
            lambda: self.coll.update_many(
                {"user": user, "isRead": False},
                {"$set": {"isRead": True, "updatedAt": now_utc(self.mongo.clock)}},
            )
        )
        return int(result.modified_count)

    async def delete(self, user: ObjectId, notification_id: ObjectId) -> bool:
        result = await self.mongo.run(
            lambda: self.coll.delete_one({"_id": notification_id, "user": user})
        )
        return bool(result.deleted_count)

    async def ensure_indexes(self) -> None:
        await self._index([("user", 1), ("createdAt", -1)])
