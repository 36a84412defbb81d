"""The database pool of a serving process (:class:`DatabaseService`):
opened once the database's URI is known (MONGO_URI, or the embedded
database once it answers), then every collection and index is made sure
of, retrying in the background while the database is away; the store
serves nothing until then (see MongoStore.ensure_indexes). What waits for the store (the
repair sweep, the site) asks :meth:`DatabaseService.whenConnected`."""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from crackershop.config import Config, mask_uri
from crackershop.errors import ShopError
from crackershop.store.database import MongoStore
from crackershop.store.interfaces import IStore
from crackershop.store.mongo import database_name, open_pool

log = Logger()

INDEX_RETRY = 2.0


class DatabaseService(Service):
    def __init__(self, reactor: Any, config: Config, uri: Callable[[], Deferred[str]]) -> None:
        self.reactor = reactor
        self.config = config
        self._uri = uri
        self.pool: Any = None
        self.store: Optional[MongoStore] = None
        self._opening: Optional[Deferred[Any]] = None
        self._failed: Optional[Failure] = None
        self._waiting: list[Deferred[IStore]] = []
        self._retry: Any = None
        self.schema_in_place = False
        self._schema_waiters: list[Deferred[None]] = []

    def startService(self) -> None:
        super().startService()
        self._opening = self._uri().addCallbacks(self._opened, self._not_opened)

    def whenConnected(self) -> Deferred[IStore]:
        """Fires with the store once the pool is open (fails if it cannot be)."""
        if self.store is not None:
            return succeed(self.store)
        if self._failed is not None:
            return fail(self._failed)

        def cancel(d: Deferred[IStore]) -> None:
            if d in self._waiting:
                self._waiting.remove(d)

        d: Deferred[IStore] = Deferred(cancel)
        self._waiting.append(d)
        return d

    def _opened(self, uri: str) -> None:
        self._opening = None
        self.pool = open_pool(uri, self.config.mongo_max_pool_size)
        name = database_name(uri, self.config.mongo_db)
        self.store = MongoStore(self.pool[name], self.reactor, self.config.request_timeout)
        log.info(
            "using MongoDB at {uri}, database {name}, {size} connections",
            uri=mask_uri(uri),
            name=name,
            size=self.config.mongo_max_pool_size,
        )
        self._ensure_indexes()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(self.store)

    def _not_opened(self, failure: Failure) -> None:
        self._opening = None
        self._failed = failure
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(failure)

    def _ensure_indexes(self) -> None:
        assert self.store is not None
        store = self.store

        def failed(failure: Failure) -> None:
            if not self.running:
                return
            if not failure.check(ShopError):
                log.failure("creating indexes failed", failure)
            self._retry = self.reactor.callLater(INDEX_RETRY, self._ensure_indexes)

        def done(_: None) -> None:
            self.schema_in_place = True
            waiting, self._schema_waiters = self._schema_waiters, []
            for d in waiting:
                d.callback(None)

        ensureDeferred(store.ensure_indexes()).addCallbacks(done, failed)

    def schema_ready(self) -> Deferred[None]:
        """Fires once every collection and index exists (the store serves
        from then on): a worker says it is ready only after that, so it
        never takes traffic only to answer 503 "starting"."""
        if self.schema_in_place:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._schema_waiters.append(d)
        return d

    def stopService(self) -> Optional[Deferred[None]]:
        super().stopService()
        if self._opening is not None:
            self._opening.cancel()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self.pool is not None:
            d: Deferred[None] = self.pool.disconnect()
            return d
        return None


def database_uri(
    reactor: Any, config: Config, parent: Any
) -> tuple[Callable[[], Deferred[str]], Any]:
    """Where the pool connects, and the embedded database serving it (None
    with MONGO_URI), added to ``parent`` here so that it starts before the
    pool and stops after it."""
    if config.mongo_uri:
        uri = config.mongo_uri
        return (lambda: succeed(uri)), None
    from crackershop.children.embedded import EmbeddedMongo

    embedded = EmbeddedMongo(reactor, config.data_dir)
    embedded.setServiceParent(parent)
    return embedded.whenReady, embedded
