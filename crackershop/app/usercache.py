"""A brief per-worker cache of the user records that token checks read.

Every authenticated request needs its user (status, role, token version).
Reading it from MongoDB each time costs a round trip per request; this
keeps each record for at most ``ttl`` seconds (AUTH_CACHE_TTL, 2 s by
default).

The bound it keeps: a write to a user through this worker (block, role
change, delete, password change) forgets the record at once, so on this
worker the change holds from the next request; another worker (or server)
sees it within ``ttl`` seconds. A read that raced with such a write is not
kept. ``ttl`` 0 reads the record on every request.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from bson import ObjectId
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from crackershop.store.interfaces import Document, IStore, IUsers

MAX_ENTRIES = 10_000
# the IUsers methods that change a user (their first argument is its id)
WRITES = frozenset({"update", "delete", "add_address", "set_default_address", "remove_address"})


class UserCache:
    def __init__(self, users: IUsers, clock: IReactorTime, ttl: float) -> None:
        self._users = users
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[ObjectId, tuple[float, Optional[Document]]] = {}
        # bumped by every write: a read that overlapped one is not kept
        self._epoch = 0

    async def get(self, user_id: ObjectId) -> Optional[Document]:
        if self.ttl <= 0:
            return await self._users.get(user_id)
        now = self.clock.seconds()
        hit = self._entries.get(user_id)
        if hit is not None and hit[0] > now:
            return copy.deepcopy(hit[1])
        epoch = self._epoch
        user = await self._users.get(user_id)
        if epoch == self._epoch:
            if len(self._entries) >= MAX_ENTRIES:
                self._purge(now)
            self._entries[user_id] = (now + self.ttl, copy.deepcopy(user))
        return user

    def forget(self, user_id: ObjectId) -> None:
        self._epoch += 1
        self._entries.pop(user_id, None)

    def _purge(self, now: float) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()

    def store_view(self, store: IStore) -> IStore:
        """The store, with user writes forgetting the cached record."""
        return _StoreView(store, _ForgettingUsers(store.users, self))


@implementer(IUsers)
class _ForgettingUsers:
    def __init__(self, users: IUsers, cache: UserCache) -> None:
        self._users = users
        self._cache = cache

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._users, name)
        if name not in WRITES:
            return method

        async def write(user_id: ObjectId, *args: Any, **kwargs: Any) -> Any:
            self._cache.forget(user_id)
            try:
                return await method(user_id, *args, **kwargs)
            finally:
                self._cache.forget(user_id)

        return write


@implementer(IStore)
class _StoreView:
    def __init__(self, store: IStore, users: IUsers) -> None:
        self._store = store
        self.users = users

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
