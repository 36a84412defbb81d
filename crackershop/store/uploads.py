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

from crackershop.clock import now_utc
from crackershop.store.mongo import Mongo, Repository

CHUNK_SIZE = 255 * 1024


class StoredFile(NamedTuple):
    data: bytes
    content_type: str
    etag: str


class IUploads(Interface):
    """Files, each with the user who uploaded it and the references of the
    documents that use it (``"product:<id>"``, ``"user:<id>"``...). A file
    is deleted only when its last reference is released, by the same call
    that sees it has none left, so nothing a document still uses can go."""

    async def put(
        name: str, data: bytes, content_type: str, owner: Optional[ObjectId], refs: Sequence[str]
    ) -> None:
        """Store a file under a new, unique name."""

    async def get(name: str) -> Optional[StoredFile]:
        """The file, or None."""

    async def owners(names: Sequence[str]) -> dict[str, Optional[ObjectId]]:
        """The files among these names that exist, with who uploaded them
        (None for files older than ownership records)."""

    async def attach(names: Sequence[str], ref: str) -> builtins.set[str]:
        """Record that ``ref`` uses these files; the names that exist."""

    async def release(names: Sequence[str], ref: str) -> int:
        """``ref`` no longer uses these files; delete those no document uses
        any more. How many were deleted. Files stored before references were
        recorded are never deleted here."""

    async def delete(names: Sequence[str]) -> int:
        """Remove these files whatever uses them (a failed upload's own
        files); how many there were."""


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

    async def put(
        self,
        name: str,
        data: bytes,
        content_type: str,
        owner: Optional[ObjectId],
        refs: Sequence[str],
    ) -> None:
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
            "metadata": {
                "contentType": content_type,
                "sha256": etag_of(data),
                "owner": owner,
                "refs": list(refs),
            },
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

    async def owners(self, names: Sequence[str]) -> dict[str, Optional[ObjectId]]:
        if not names:
            return {}
        files = await self._find({"filename": {"$in": list(names)}}, [("_id", 1)])
        return {f["filename"]: (f.get("metadata") or {}).get("owner") for f in files}

    async def attach(self, names: Sequence[str], ref: str) -> builtins.set[str]:
        if not names:
            return set()
        chosen = {"filename": {"$in": list(names)}, "metadata.refs": {"$exists": True}}
        await self.mongo.run(
            lambda: self.coll.update_many(chosen, {"$addToSet": {"metadata.refs": ref}})
        )
        return set(await self.owners(names))

    async def release(self, names: Sequence[str], ref: str) -> int:
        if not names:
            return 0
        chosen = {"filename": {"$in": list(names)}}
        pull = {"$pull": {"metadata.refs": ref}}
        await self.mongo.run(lambda: self.coll.update_many(chosen, pull))
        unused = {**chosen, "metadata.refs": {"$size": 0}}
        deleted = 0
        for file in await self._find(unused, [("_id", 1)]):
            if await self._delete_unused(file["_id"]):
                deleted += 1
        return deleted

    async def _delete_unused(self, file_id: ObjectId) -> bool:
        # guarded by the same condition: a reference added since keeps the file
        guard = {"_id": file_id, "metadata.refs": {"$size": 0}}
        gone = await self.mongo.run(lambda: self.coll.delete_one(guard))
        if not gone.deleted_count:
            return False
        await self.mongo.run(lambda: self.chunks.coll.delete_many({"files_id": file_id}))
        return True

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


class _Held(NamedTuple):
    file: StoredFile
    owner: Optional[ObjectId]
    refs: Optional[builtins.set[str]]  # None: stored before references were kept


@implementer(IUploads)
class MemoryUploads:
    def __init__(self) -> None:
        self.held: dict[str, _Held] = {}

    async def put(
        self,
        name: str,
        data: bytes,
        content_type: str,
        owner: Optional[ObjectId],
        refs: Sequence[str],
    ) -> None:
        stored = StoredFile(bytes(data), content_type, etag_of(data))
        self.held[name] = _Held(stored, owner, set(refs))

    async def get(self, name: str) -> Optional[StoredFile]:
        held = self.held.get(name)
        return held.file if held is not None else None

    async def owners(self, names: Sequence[str]) -> dict[str, Optional[ObjectId]]:
        return {n: self.held[n].owner for n in names if n in self.held}

    async def attach(self, names: Sequence[str], ref: str) -> builtins.set[str]:
        for name in names:
            held = self.held.get(name)
            if held is not None and held.refs is not None:
                held.refs.add(ref)
        return {n for n in names if n in self.held}

    async def release(self, names: Sequence[str], ref: str) -> int:
        deleted = 0
        for name in names:
            held = self.held.get(name)
            if held is None or held.refs is None:
                continue
            held.refs.discard(ref)
            if not held.refs:
                del self.held[name]
                deleted += 1
        return deleted

    async def delete(self, names: Sequence[str]) -> int:
        return sum(1 for n in names if self.held.pop(n, None) is not None)

    def names(self) -> builtins.list[str]:
        return sorted(self.held)

    def add_legacy(self, name: str, data: bytes, content_type: str) -> None:
        """A file as stored before owners and references were recorded."""
        self.held[name] = _Held(StoredFile(data, content_type, etag_of(data)), None, None)
