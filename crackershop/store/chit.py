"""The savings-scheme collections: ``chitschemes``, ``chitmembers`` and
``chitpayments``. Unique indexes make a second membership of the same scheme,
or a second payment for the same month, impossible even when requests race."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.store.interfaces import Document, IChit
from crackershop.store.mongo import Mongo, Repository


class _Schemes(Repository):
    name = "chitschemes"


class _Members(Repository):
    name = "chitmembers"
    unique = "member"


class _Payments(Repository):
    name = "chitpayments"
    unique = "monthIndex"


@implementer(IChit)
class MongoChit:
    def __init__(self, mongo: Mongo) -> None:
        self.schemes = _Schemes(mongo)
        self.members = _Members(mongo)
        self.paid = _Payments(mongo)

    async def create_scheme(self, doc: Mapping[str, Any]) -> Document:
        return await self.schemes._insert(doc)

    async def get_scheme(self, scheme_id: ObjectId) -> Optional[Document]:
        return await self.schemes._get(scheme_id)

    async def list_schemes(self) -> builtins.list[Document]:
        return await self.schemes._find({}, [("createdAt", -1), ("_id", -1)])

    async def update_scheme(
        self, scheme_id: ObjectId, changes: Mapping[str, Any]
    ) -> Optional[Document]:
        return await self.schemes._update({"_id": scheme_id}, changes)

    async def delete_scheme(self, scheme_id: ObjectId) -> bool:
        return await self.schemes._delete(scheme_id)

    async def add_member(self, doc: Mapping[str, Any]) -> Document:
        return await self.members._insert(doc)

    async def member(self, user: ObjectId, scheme: ObjectId) -> Optional[Document]:
        found = await self.members._find({"user": user, "scheme": scheme}, [("_id", 1)], 0, 1)
        return found[0] if found else None

    async def set_member_status(
        self, user: ObjectId, scheme: ObjectId, allowed: Sequence[str], status: str
    ) -> Optional[Document]:
        return await self.members._update(
            {"user": user, "scheme": scheme, "status": {"$in": list(allowed)}},
            {"status": status},
        )

    async def members_of(self, scheme: ObjectId) -> builtins.list[Document]:
        return await self.members._find({"scheme": scheme}, [("createdAt", 1), ("_id", 1)])

    async def memberships_of(self, user: ObjectId) -> builtins.list[Document]:
        return await self.members._find({"user": user}, [("createdAt", 1), ("_id", 1)])

    async def add_payment(self, doc: Mapping[str, Any]) -> Document:
        return await self.paid._insert(doc)

    async def payments(
        self, scheme: ObjectId, user: Optional[ObjectId] = None
    ) -> builtins.list[Document]:
        filter: dict[str, Any] = {"scheme": scheme}
        if user is not None:
            filter["user"] = user
        return await self.paid._find(filter, [("monthIndex", 1), ("_id", 1)])

    async def ensure_indexes(self) -> None:
        await self.schemes._create_collection()
        await self.members._index([("user", 1), ("scheme", 1)], unique=True)
        await self.members._index([("scheme", 1), ("createdAt", 1)])
        await self.paid._index([("user", 1), ("scheme", 1), ("monthIndex", 1)], unique=True)
        await self.paid._index([("scheme", 1), ("monthIndex", 1)])
