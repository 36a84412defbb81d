"""Images uploaded with products, categories, banners and avatars.

Only JPEG, PNG, WebP and GIF whose bytes are what they claim; names are
generated, never taken from the client; the files are served back at
``/uploads/<name>`` with a long cache lifetime (a name is never reused).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Optional

import attr
from bson import ObjectId
from twisted.logger import Logger

from crackershop.app.forms import UploadedFile
from crackershop.app.routing import Call, Reply, Route
from crackershop.errors import Forbidden, NotFound, ShopError, ValidationFailed
from crackershop.store.uploads import IUploads

log = Logger()
PREFIX = "/uploads/"
CACHE = "public, max-age=31536000, immutable"


def sniff(data: bytes) -> Optional[tuple[str, str]]:
    """The image type the bytes really are: (extension, MIME type), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg", "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif", "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", "image/webp"
    return None


def base_url(call: Call) -> str:
    """The server's address as the client reached it (when PUBLIC_URL is unset)."""
    request = call.request
    scheme = "https" if request.isSecure() else "http"
    host = (request.getHeader(b"host") or b"localhost").decode("ascii", "replace")
    return f"{scheme}://{host}"


def _valid_name(name: str) -> bool:
    stem, _, ext = name.partition(".")
    return (
        len(stem) == 32
        and all(c in "0123456789abcdef" for c in stem)
        and ext in ("jpg", "png", "gif", "webp")
    )


def ref(kind: str, doc_id: object) -> str:
    """How a document is named among a file's references."""
    return f"{kind}:{doc_id}"


def one(url: object) -> list[str]:
    """A single-image field's URL as a list (empty when there is none)."""
    return [url] if isinstance(url, str) and url else []


@attr.s(auto_attribs=True)
class ImageEdit:
    added: list[str]
    uses: list[str]


class Uploads:
    def __init__(self, store: IUploads, public_url: str) -> None:
        self.store = store
        self.public_url = public_url.rstrip("/")

    def routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                "/uploads/{name}",
                self.serve,
                "An uploaded image",
                operation="getUpload",
                tag="uploads",
                statuses=(304,),
                produces=("image/jpeg", "image/png", "image/webp", "image/gif"),
            )
        ]

    def url(self, name: str, base: str) -> str:
        return f"{self.public_url or base}{PREFIX}{name}"

    def name_of(self, url: object) -> Optional[str]:
        """The stored name behind one of our URLs; None for anything else."""
        if not isinstance(url, str) or PREFIX not in url:
            return None
        name = url.rsplit(PREFIX, 1)[1]
        return name if _valid_name(name) else None

    def names(self, urls: Iterable[object]) -> list[str]:
        """The stored names behind those of these URLs that are ours."""
        return sorted({n for n in (self.name_of(u) for u in urls) if n is not None})

    async def save(self, call: Call, field: str, owner: Optional[ObjectId], ref: str) -> list[str]:
        """Check every file of the field, then store them all, uploaded by
        ``owner`` and used by ``ref``; their URLs. Nothing is stored unless
        every file is an acceptable image."""
        files: Sequence[UploadedFile] = call.files.get(field, [])
        checked = []
        for upload in files:
            kind = sniff(upload.data)
            if kind is None:
                raise ValidationFailed(
                    "Invalid image", {upload.field: "must be a JPEG, PNG, WebP or GIF image"}
                )
            checked.append((upload, kind))
        stored: list[str] = []
        try:
            for upload, (ext, mime) in checked:
                name = f"{secrets.token_hex(16)}.{ext}"
                await self.store.put(name, upload.data, mime, owner, [ref])
                stored.append(name)
        except BaseException:
            await self._quietly(self.store.delete(stored), len(stored))
            raise
        return [self.url(name, base_url(call)) for name in stored]

    async def use(self, urls: Sequence[str], ref: str, owner: Optional[ObjectId] = None) -> None:
        """Record that ``ref`` uses these URLs' files. With ``owner`` (a
        user's own avatar), a file of ours must be one the owner uploaded
        and any other URL must be an external https one."""
        names = self.names(urls)
        if owner is not None:
            for url in urls:
                if self.name_of(url) is None and not str(url).startswith("https://"):
                    raise ValidationFailed(
                        "An image must be one you uploaded or an https:// address",
                        {"avatar": "must be an image you uploaded or an https URL"},
                    )
            uploaded = await self.store.owners(names)
            if any(uploaded.get(n) != owner for n in names):
                raise Forbidden(
                    "You can only use an image you uploaded yourself",
                    {"avatar": "is not an image you uploaded"},
                )
        found = await self.store.attach(names, ref)
        missing = sorted(set(names) - found)
        if missing:
            await self._release_names(sorted(found), ref)
            raise ValidationFailed(
                "An image you referred to no longer exists; upload it again",
                {"images": f"no such uploaded file: {missing[0]}"},
            )

    @asynccontextmanager
    async def editing(
        self,
        call: Call,
        field: str,
        ref: str,
        before: Iterable[object] = (),
        given: Sequence[str] = (),
        owner: Optional[ObjectId] = None,
        own_only: bool = False,
    ) -> AsyncIterator[ImageEdit]:
        """Around a write that makes the document ``ref`` use images: the
        ``given`` URLs it did not use ``before`` are checked and referenced,
        the field's files are stored (``edit.added``), then the block sets
        ``edit.uses`` to what the document uses once written. After the
        write, the images it stopped using are released; if the write
        fails, what this edit referenced or stored is released instead."""
        had = {u for u in before if isinstance(u, str)}
        new = [u for u in given if u not in had]
        await self.use(new, ref, owner if own_only else None)
        try:
            added = await self.save(call, field, owner, ref)
        except BaseException:
            await self.release(new, ref)
            raise
        edit = ImageEdit(added, sorted(had))
        try:
            yield edit
        except BaseException:
            await self.release([*new, *added], ref)
            raise
        await self.release(sorted((had | set(new) | set(added)) - set(edit.uses)), ref)

    @asynccontextmanager
    async def single(
        self,
        call: Call,
        field: str,
        ref: str,
        fields: dict[str, Any],
        current: object = None,
        owner: Optional[ObjectId] = None,
        own_only: bool = False,
    ) -> AsyncIterator[None]:
        """:meth:`editing` for a document with one image, ``fields[field]``
        (its URL, set here to an uploaded file when there is one); ``current``
        is the image before the write, unchanged unless ``fields`` has one."""
        async with self.editing(
            call,
            field,
            ref,
            before=one(current),
            given=one(fields.get(field)),
            owner=owner,
            own_only=own_only,
        ) as edit:
            if edit.added:
                fields[field] = edit.added[0]
            edit.uses = one(fields.get(field, current))
            yield

    async def release(self, urls: Iterable[object], ref: str) -> None:
        """``ref`` no longer uses these URLs' files; those nothing else
        uses are deleted. A failure to release is logged (a file is left
        behind, never one that is still used)."""
        await self._release_names(self.names(urls), ref)

    async def _release_names(self, names: Sequence[str], ref: str) -> None:
        if names:
            await self._quietly(self.store.release(names, ref), len(names))

    async def _quietly(self, work: Awaitable[object], count: int) -> None:
        try:
            await work
        except ShopError as e:
            log.warn("could not release {count} upload(s): {error}", count=count, error=e.message)

    async def serve(self, call: Call) -> Reply:
        name = call.params.get("name", "")
        stored = await self.store.get(name) if _valid_name(name) else None
        if stored is None:
            raise NotFound("File not found")
        etag = f'"{stored.etag}"'
        # Images are embedded by the shop's pages on other origins.
        headers = {
            "ETag": etag,
            "Cache-Control": CACHE,
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        match = call.request.getHeader(b"if-none-match")
        if match is not None and etag.encode("ascii") in match:
            return Reply(b"", 304, headers, content_type=stored.content_type)
        return Reply(stored.data, 200, headers, content_type=stored.content_type)
