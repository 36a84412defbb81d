"""Notifications the server creates itself: to one user at once, or to every
customer in the background, in batches, without slowing the request that
caused them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from bson import ObjectId
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger

from crackershop.errors import ShopError
from crackershop.store.interfaces import IStore

log = Logger()


class Notifier:
    def __init__(self, store: IStore, batch: int = 500) -> None:
        self.store = store
        self.batch = batch
        self.pending: set[Deferred[int]] = set()

    async def notify(
        self,
        user: ObjectId,
        title: str,
        message: str,
        type: str,
        data: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Tell one user; a failure is logged, never passed to the caller."""
        try:
            await self.store.notifications.create_many(
                [
                    {
                        "user": user,
                        "title": title,
                        "message": message,
                        "type": type,
                        "data": dict(data or {}),
                    }
                ]
            )
        except ShopError as e:
            log.warn("could not notify a user: {error}", error=e.message)

    def broadcast(
        self, role: str, title: str, message: str, type: str, data: Mapping[str, Any]
    ) -> Deferred[int]:
        """Tell every active user with the role, batch by batch, in the
        background; the Deferred fires with how many were told."""
        d = ensureDeferred(self._broadcast(role, title, message, type, dict(data)))
        self.pending.add(d)

        def done(result: object) -> object:
            self.pending.discard(d)
            return result

        d.addBoth(done)
        d.addErrback(lambda f: log.failure("broadcast {title!r} failed", f, title=title))
        return d

    async def _broadcast(
        self, role: str, title: str, message: str, type: str, data: dict[str, Any]
    ) -> int:
        told = 0
        after: Optional[ObjectId] = None
        while True:
            ids = await self.store.users.ids_with_role(role, after, self.batch)
            if not ids:
                return told
            told += await self.store.notifications.create_many(
                [
                    {"user": u, "title": title, "message": message, "type": type, "data": data}
                    for u in ids
                ]
            )
            after = ids[-1]
