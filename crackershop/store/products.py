"""The ``products`` collection."""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.store.interfaces import Document, IProducts, Page, ProductQuery
from crackershop.store.mongo import Repository, order_by

SORT_FIELDS: dict[str, list[tuple[str, int]]] = {
    "-createdAt": [("createdAt", -1), ("_id", -1)],
    "createdAt": [("createdAt", 1), ("_id", 1)],
    "price": [("price", 1), ("_id", 1)],
    "-price": [("price", -1), ("_id", -1)],
    "name": [("name", 1), ("_id", 1)],
    "-name": [("name", -1), ("_id", -1)],
}


def product_filter(query: ProductQuery) -> dict[str, Any]:
    """The MongoDB filter for a product query.

    Search text is escaped, so it is matched literally and case-insensitively;
    it is never run as a regular expression of the client's making.
    """
    filter: dict[str, Any] = {}
    if not query.include_inactive:
        filter["status"] = {"$ne": "Inactive"}
    if query.category is not None:
        filter["category"] = query.category
    if query.featured:
        filter["isFeatured"] = True
    if query.diwali_special:
        filter["isDiwaliSpecial"] = True
    price: dict[str, float] = {}
    if query.min_price is not None:
        price["$gte"] = query.min_price
    if query.max_price is not None:
        price["$lte"] = query.max_price
    if price:
        filter["price"] = price
    if query.search:
        pattern = {"$regex": re.escape(query.search), "$options": "i"}
        filter["$or"] = [{"name": pattern}, {"description": pattern}]
    return filter


@implementer(IProducts)
class MongoProducts(Repository):
    name = "products"
    unique = "sku"

    async def create(self, doc: Mapping[str, Any]) -> Document:
        return await self._insert(doc)

    async def get(self, product_id: ObjectId) -> Optional[Document]:
        return await self._get(product_id)

    async def update(self, product_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        return await self._update({"_id": product_id}, changes)

    async def delete(self, product_id: ObjectId) -> bool:
        return await self._delete(product_id)

    async def list(self, query: ProductQuery) -> Page:
        filter = product_filter(query)
        skip = (query.page - 1) * query.limit
        items = await self._find(filter, SORT_FIELDS[query.sort], skip, query.limit)
        return Page(items, await self._count(filter))

    async def all_active(self, fields: Sequence[str]) -> builtins.list[Document]:
        projection = {name: 1 for name in fields}
        docs: builtins.list[Document] = await self.mongo.run(
            lambda: self.coll.find(
                {"status": {"$ne": "Inactive"}},
                projection or {"_id": 1},
                sort=order_by([("name", 1), ("_id", 1)]),
            )
        )
        return docs

    async def count_in_category(self, category_id: ObjectId) -> int:
        return await self._count({"category": category_id})

    async def ensure_indexes(self) -> None:
        await self._index([("category", 1), ("createdAt", -1)])
        await self._index([("createdAt", -1)])
        await self._index([("price", 1)])
        await self._index([("name", 1)])
        await self._index([("sku", 1)], unique=True, sparse=True)
