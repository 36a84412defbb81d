"""Images uploaded with products, categories, banners and avatars.

Only JPEG, PNG, WebP and GIF whose bytes are what they claim; names are
generated, never taken from the client; the files are served back at
``/uploads/<name>`` with a long cache lifetime (a name is never reused).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Optional

from twisted.logger import Logger

from crackershop.app.forms import UploadedFile
from crackershop.app.routing import Call, Reply, Route
from crackershop.errors import NotFound, ShopError, ValidationFailed
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

    async def save(self, call: Call, field: str) -> list[str]:
        """Check every file of the field, then store them all; their URLs.
        Nothing is stored unless every file is an acceptable image."""
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
                await self.store.put(name, upload.data, mime)
                stored.append(name)
        except BaseException:
            await self.discard_names(stored)
            raise
        return [self.url(name, base_url(call)) for name in stored]

    @asynccontextmanager
    async def attached(self, call: Call, field: str) -> AsyncIterator[list[str]]:
        """Store the field's images for the block; if the block fails (the
        write they belong to did not happen), delete them again."""
        added = await self.save(call, field)
        try:
            yield added
        except BaseException:
            await self.discard(added)
            raise

    async def replaced(self, before: Iterable[object], after: Iterable[object]) -> None:
        """Delete the images a write stopped using."""
        await self.discard(set(before) - set(after))

    async def discard(self, urls: Iterable[object]) -> None:
        """Delete the files behind those of these URLs that are ours."""
        names = [n for n in (self.name_of(u) for u in urls) if n is not None]
        await self.discard_names(names)

    async def discard_names(self, names: Sequence[str]) -> None:
        if not names:
            return
        try:
            await self.store.delete(names)
        except ShopError as e:
            log.warn(
                "could not delete {count} unused upload(s): {error}",
                count=len(names),
                error=e.message,
            )

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
