"""The shop-wide ``settings`` document: one document, created with its
defaults the first time it is needed."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import Any, Optional

from bson import ObjectId
from zope.interface import implementer

from crackershop.clock import now_utc
from crackershop.errors import DuplicateKey
from crackershop.store.interfaces import Document, ISettings
from crackershop.store.mongo import Repository

# A fixed id makes creating the document race-safe: two workers that both
# find it missing both insert this id, and the second one's insert fails.
SETTINGS_ID = ObjectId("000000000000000000000001")

DEFAULTS: dict[str, dict[str, Any]] = {
    "aboutUs": {
        "title": "About CrackerShop",
        "description": "",
        "mission": "",
        "vision": "",
        "image": "",
    },
    "shipping": {"baseFee": 50, "freeShippingAbove": 500, "description": ""},
    "fees": {"packagingFee": 0, "handlingFee": 0, "taxRate": 0, "description": ""},
    "orderSettings": {"minimumOrderAmount": 100, "description": ""},
    "contact": {"email": "", "phone": "", "address": "", "latitude": None, "longitude": None},
}


def with_defaults(doc: Optional[Mapping[str, Any]]) -> Document:
    """The document with every missing part and field filled from the
    defaults, so a partial (older) document prices orders correctly."""
    merged: Document = dict(doc or {})
    for part, defaults in DEFAULTS.items():
        given = merged.get(part)
        values = given if isinstance(given, Mapping) else {}
        # a null where a default exists reads as the default: the admin
        # screens call .toString() on these numbers
        merged[part] = {
            **defaults,
            **{k: v for k, v in values.items() if v is not None or defaults.get(k) is None},
        }
    return merged


def _new_document() -> Document:
    return {"_id": SETTINGS_ID, **copy.deepcopy(DEFAULTS)}


@implementer(ISettings)
class MongoSettings(Repository):
    name = "settings"

    async def _existing(self) -> Optional[Document]:
        # An older database may hold its one settings document under any id.
        docs = await self._find({}, [("_id", 1)], limit=1)
        return docs[0] if docs else None

    async def get(self) -> Document:
        doc = await self._existing()
        if doc is None:
            with contextlib.suppress(DuplicateKey):  # another process created it first
                await self._insert(_new_document())
            doc = await self._existing()
        return with_defaults(doc)

    async def update(self, changes: Mapping[str, Mapping[str, Any]]) -> Document:
        current = await self.get()
        fields = {f"{part}.{k}": v for part, values in changes.items() for k, v in values.items()}
        fields["updatedAt"] = now_utc(self.mongo.clock)
        await self.mongo.run(
            lambda: self.coll.update_one({"_id": current["_id"]}, {"$set": fields})
        )
        return await self.get()

    async def ensure_indexes(self) -> None:
        await self._create_collection()
