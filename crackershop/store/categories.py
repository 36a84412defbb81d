"""The ``categories`` collection."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.store.interfaces import Document, ICategories
from crackershop.store.mongo import Repository


@implementer(ICategories)
class MongoCategories(Repository):
    name = "categories"
    unique = "name"

    async def create(self, doc: Mapping[str, Any]) -> Document:
        return await self._insert(doc)

    async def get(self, category_id: ObjectId) -> Optional[Document]:
        return await self._get(category_id)

    async def by_ids(self, ids: Sequence[ObjectId]) -> builtins.list[Document]:
        if not ids:
            return []
        return await self._find({"_id": {"$in": list(ids)}}, [("_id", 1)])

    async def list(self, include_inactive: bool) -> builtins.list[Document]:
        filter = {} if include_inactive else {"status": {"$ne": "Inactive"}}
        return await self._find(filter, [("name", 1)])

    async def update(self, category_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return await self._update({"_id": category_id}, changes)

    async def delete(self, category_id: ObjectId) -> bool:
        return await self._delete(category_id)

    async def ensure_indexes(self) -> None:
        await self._index([("name", 1)], unique=True)
