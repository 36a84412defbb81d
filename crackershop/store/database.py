"""The store as the app sees it: every repository over one database."""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from crackershop.store.categories import MongoCategories
from crackershop.store.chit import MongoChit
from crackershop.store.content import MongoBanners, MongoNotifications
from crackershop.store.dashboard import MongoDashboard
from crackershop.store.interfaces import IStore
from crackershop.store.mongo import Mongo
from crackershop.store.orders import MongoIdempotency, MongoOrders, MongoStock
from crackershop.store.products import MongoProducts
from crackershop.store.settings import MongoSettings
from crackershop.store.uploads import MongoUploads
from crackershop.store.users import MongoUsers

log = Logger()


@implementer(IStore)
class MongoStore:
    def __init__(self, db: Any, clock: IReactorTime, timeout: float) -> None:
        self.mongo = Mongo(db, clock, timeout)
        self.users = MongoUsers(self.mongo)
        self.categories = MongoCategories(self.mongo)
        self.products = MongoProducts(self.mongo)
        self.banners = MongoBanners(self.mongo)
        self.notifications = MongoNotifications(self.mongo)
        self.chit = MongoChit(self.mongo)
        self.uploads = MongoUploads(self.mongo)
        self.dashboard = MongoDashboard(self.mongo)
        self.settings = MongoSettings(self.mongo)
        self.orders = MongoOrders(self.mongo)
        self.stock = MongoStock(self.mongo)
        self.idempotency = MongoIdempotency(self.mongo)

    async def ping(self) -> None:
        await self.mongo.ping()

    async def reachable(self) -> None:
        """Whether the database answers and accepts us, schema or not."""
        await self.mongo.ping(schema=True)

    async def ensure_indexes(self) -> None:
        """Create every collection and index that is missing, then let the
        store be used (see Mongo.schema_ready); until then a request gets
        503 "starting" (or "database unavailable" until the database has
        answered)."""
        self.mongo.collections = None  # read afresh
        for repo in (
            self.settings,
            self.users,
            self.categories,
            self.products,
            self.banners,
            self.notifications,
            self.chit,
            self.uploads,
            self.orders,
            self.stock,
            self.idempotency,
        ):
            await repo.ensure_indexes()
        self.mongo.schema_ready = True
        self.mongo.collections = None
        log.info("database collections and indexes are in place")
