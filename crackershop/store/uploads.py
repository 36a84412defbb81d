"""Uploaded files in MongoDB, laid out as GridFS (``uploads.files`` and
``uploads.chunks``), so every worker and every server sees them.

txmongo's own GridFS computes each file's MD5 with the ``filemd5`` command,
which the embedded database does not have (and the GridFS spec has
deprecated MD5), so the two collections are written here, per the spec: the
chunks first, then the file document, which makes the file visible only once
it is whole. A SHA-256 of the content is kept as the ETag.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Sequence
from typing import NamedTuple, Optional

from bson import Binary, ObjectId
from zope.interface import Interface, implementer

from crackershop.store.mongo import Mongo, Repository, now_utc

CHUNK_SIZE = 255 * 1024


class StoredFile(NamedTuple):
    data: bytes
    content_type: str
    etag: str


class IUploads(Interface):
    async def put(name: str, data: bytes, content_type: str) -> None:
        """Store a file under a new, unique name."""

    async def get(name: str) -> Optional[StoredFile]:
        """The file, or None."""

    async def delete(names: Sequence[str]) -> int:
        """Remove these files; how many there were."""


def etag_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class _Chunks(Repository):
    name = "uploads.chunks"


@implementer(IUploads)
class MongoUploads(Repository):
    name = "uploads.files"

    def __init__(self, mongo: Mongo) -> None:
        super().__init__(mongo)
        self.chunks = _Chunks(mongo)

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        file_id = ObjectId()
        pieces = [
            {
                "_id": ObjectId(),
                "files_id": file_id,
                "n": n,
                "data": Binary(data[start : start + CHUNK_SIZE]),
            }
            for n, start in enumerate(range(0, max(len(data), 1), CHUNK_SIZE))
        ]
        await self.mongo.run(lambda: self.chunks.coll.insert_many(pieces))
        document = {
            "_id": file_id,
            "filename": name,
            "length": len(data),
            "chunkSize": CHUNK_SIZE,
            "uploadDate": now_utc(self.mongo.clock),
            "contentType": content_type,
            "metadata": {"contentType": content_type, "sha256": etag_of(data)},
        }
        try:
            await self.mongo.run(lambda: self.coll.insert_one(document))
        except Exception:
            await self.mongo.run(lambda: self.chunks.coll.delete_many({"files_id": file_id}))
            raise

    async def get(self, name: str) -> Optional[StoredFile]:
        found = await self._find({"filename": name}, [("uploadDate", -1)], 0, 1)
        if not found:
            return None
        file = found[0]
        pieces = await self.chunks._find({"files_id": file["_id"]}, [("n", 1)])
        data = b"".join(bytes(p["data"]) for p in pieces)[: file["length"]]
        metadata = file.get("metadata") or {}
        content_type = metadata.get("contentType") or file.get("contentType") or ""
        return StoredFile(data, content_type, metadata.get("sha256") or etag_of(data))

    async def delete(self, names: Sequence[str]) -> int:
        if not names:
            return 0
        files = await self._find({"filename": {"$in": list(names)}}, [("_id", 1)])
        ids = [f["_id"] for f in files]
        if not ids:
            return 0
        await self.mongo.run(lambda: self.coll.delete_many({"_id": {"$in": ids}}))
        await self.mongo.run(lambda: self.chunks.coll.delete_many({"files_id": {"$in": ids}}))
        return len(ids)

    async def ensure_indexes(self) -> None:
        await self._index([("filename", 1), ("uploadDate", 1)])
        await self.chunks._index([("files_id", 1), ("n", 1)], unique=True)


@implementer(IUploads)
class MemoryUploads:
    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        self.files[name] = StoredFile(bytes(data), content_type, etag_of(data))

    async def get(self, name: str) -> Optional[StoredFile]:
        return self.files.get(name)

    async def delete(self, names: Sequence[str]) -> int:
        return sum(1 for n in names if self.files.pop(n, None) is not None)

    def names(self) -> builtins.list[str]:
        return sorted(self.files)
