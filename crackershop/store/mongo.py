"""The MongoDB connection: a txmongo pool, deadlines on every operation,
and driver errors turned into domain errors."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import timezone
from typing import Any, Callable, Optional, TypeVar

from bson import ObjectId
from bson.codec_options import CodecOptions
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from txmongo.collection import ReturnDocument
from txmongo.connection import ConnectionPool, _Connection, _Pinger
from txmongo.filter import ASCENDING, DESCENDING, sort

from crackershop.clock import now_utc
from crackershop.errors import DatabaseStarting, DatabaseUnavailable, DuplicateKey
from crackershop.metrics import metrics
from crackershop.store.interfaces import Document

log = Logger()
T = TypeVar("T")

# txmongo's factories announce every (re)connection at info level.
_Connection.noisy = False
_Pinger.noisy = False

# Unauthorized, AuthenticationFailed
NOT_AUTHORIZED = (13, 18)
NAMESPACE_EXISTS = 48

CODEC: CodecOptions[Any] = CodecOptions(tz_aware=True, tzinfo=timezone.utc)


def open_pool(uri: str, pool_size: int) -> ConnectionPool:
    """A pool of exactly ``pool_size`` connections, reconnecting quickly.

    txmongo opens every connection of the pool when it is created and keeps
    it open, so MONGO_MAX_POOL_SIZE is the number of connections a process
    holds; after an outage each connection retries with a back-off capped at
    two seconds (the default is a minute), so the whole pool is back soon
    after the database is. TLS and credentials come from the URI
    (crackershop/store/connect.py).
    """
    from crackershop.store.connect import connection_settings

    settings = connection_settings(uri)
    pool = ConnectionPool(
        uri,
        pool_size=pool_size,
        retry_delay=0.5,
        max_delay=2.0,
        codec_options=CODEC,
        ssl_context_factory=settings.tls,
    )
    if settings.credentials is not None:
        c = settings.credentials
        d = pool.authenticate(c.source, c.username, c.password, c.mechanism)
        d.addErrback(
            lambda f: log.error(
                "MongoDB authentication as {user} failed: {error}",
                user=c.username,
                error=str(f.value).replace(c.password, "********"),
            )
        )
    return pool


def database_name(uri: str, default: str) -> str:
    from pymongo.uri_parser import parse_uri

    try:
        parsed = parse_uri(uri, connect_timeout=5)
    except Exception:  # an unresolvable SRV record is reported when connecting
        return default
    return parsed.get("database") or default


class Mongo:
    """One database, with a deadline and error mapping around each call."""

    def __init__(self, db: Any, clock: IReactorTime, timeout: float) -> None:
        self.db = db
        self.clock = clock
        self.timeout = timeout
        # Until every collection and index exists, only the calls that make
        # them run (see Schema): the embedded database stops taking writes
        # when an insert that creates its collection races with any
        # collection or index being created.
        self.schema_ready = False
        # the schema set-up has had an answer from the database
        self.answered = False
        # the collections known to exist, read once per schema check
        self.collections: Optional[set[str]] = None

    def collection(self, name: str) -> Any:
        return self.db[name]

    async def run(
        self, call: Callable[[], Awaitable[T]], unique: str = "", schema: bool = False
    ) -> T:
        """Run one driver call; DatabaseUnavailable if it fails or is late.
        Before the schema is in place only ``schema`` calls run."""
        if not (self.schema_ready or schema):
            # setting up once the database has answered; until then it is
            # as good as unavailable (it may refuse us, or not be there)
            raise DatabaseStarting() if self.answered else DatabaseUnavailable()
        d: Deferred[T] = ensureDeferred(_awaited(call))
        d.addTimeout(self.timeout, self.clock)
        recorded = metrics()
        began = self.clock.seconds()
        try:
            result = await d
            recorded.mongo_latency.observe(self.clock.seconds() - began)
            return result
        except DuplicateKeyError:
            raise DuplicateKey(unique or "value") from None
        except (TimeoutError, CancelledError, PyMongoError, ConnectionError) as e:
            if isinstance(e, OperationFailure) and e.code in NOT_AUTHORIZED:
                # the server is there but refuses us: MONGO_URI's credentials
                log.error(
                    "the database refused this server (check MONGO_URI's user, password and "
                    "authSource; the user needs SCRAM-SHA-1): {error}",
                    error=str(e)[:300],
                )
                recorded.mongo_errors.inc()
                raise DatabaseUnavailable() from None
            if isinstance(e, OperationFailure) and not _is_transient(e):
                raise
            log.warn("database call failed: {error}", error=repr(e))
            recorded.mongo_errors.inc()
            raise DatabaseUnavailable() from None

    async def existing_collections(self) -> set[str]:
        if self.collections is None:
            names = await self.run(lambda: self.db.collection_names(), schema=True)
            self.collections = set(names)
            self.answered = True
        return self.collections

    async def ping(self, schema: bool = False) -> None:
        """Whether the database answers and accepts us (and, unless
        ``schema``, whether the schema is in place)."""
        await self.run(lambda: self.db.command("ping"), schema=schema)
        # ping needs no login; a read shows whether the server accepts ours
        await self.run(lambda: self.db["users"].find_one({}, {"_id": 1}), schema=schema)


async def _awaited(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


def _is_transient(error: OperationFailure) -> bool:
    labels: set[str] = set(getattr(error, "_error_labels", None) or ())
    return bool({"TransientTransactionError", "RetryableWriteError"} & set(labels))


def _key_of(index: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """An index's key as (field, 1 or -1) pairs (other kinds as they are)."""
    key = index.get("key") or {}
    return [(field, int(v) if isinstance(v, (int, float)) else v) for field, v in key.items()]


def order_by(fields: Sequence[tuple[str, int]]) -> Any:
    keys: list[tuple[str, int]] = []
    for name, direction in fields:
        keys += DESCENDING(name) if direction < 0 else ASCENDING(name)
    return sort(keys)


class Repository:
    """Helpers shared by the collection repositories."""

    name = ""
    unique = ""

    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo
        self.coll = mongo.collection(self.name)

    async def _insert(self, doc: Mapping[str, Any]) -> Document:
        stamped = dict(doc)
        now = now_utc(self.mongo.clock)
        stamped.setdefault("_id", ObjectId())
        stamped.setdefault("createdAt", now)
        stamped.setdefault("updatedAt", now)
        await self.mongo.run(lambda: self.coll.insert_one(stamped), self.unique)
        return stamped

    async def _get(self, doc_id: ObjectId) -> Optional[Document]:
        doc: Optional[Document] = await self.mongo.run(lambda: self.coll.find_one({"_id": doc_id}))
        return doc

    async def _update(
        self,
        filter: Mapping[str, Any],
        changes: Mapping[str, Any],
        inc: Optional[Mapping[str, int]] = None,
    ) -> Optional[Document]:
        update: dict[str, Any] = {
            "$set": {**changes, "updatedAt": now_utc(self.mongo.clock)},
        }
        if inc:
            update["$inc"] = dict(inc)
        doc: Optional[Document] = await self.mongo.run(
            lambda: self.coll.find_one_and_update(
                filter, update, return_document=ReturnDocument.AFTER
            ),
            self.unique,
        )
        return doc

    async def _delete(self, doc_id: ObjectId) -> bool:
        result = await self.mongo.run(lambda: self.coll.delete_one({"_id": doc_id}))
        return bool(result.deleted_count)

    async def _find(
        self,
        filter: Mapping[str, Any],
        order: Sequence[tuple[str, int]],
        skip: int = 0,
        limit: int = 0,
    ) -> list[Document]:
        docs: list[Document] = await self.mongo.run(
            lambda: self.coll.find(filter, skip=skip, limit=limit, sort=order_by(order))
        )
        return docs

    async def _count(self, filter: Mapping[str, Any]) -> int:
        n: int = await self.mongo.run(lambda: self.coll.count_documents(filter))
        return n

    async def _create_collection(self) -> None:
        """Create the collection unless it exists."""
        existing = await self.mongo.existing_collections()
        if self.name in existing:
            return
        try:
            await self.mongo.run(lambda: self.mongo.db.command("create", self.name), schema=True)
        except OperationFailure as e:
            if e.code != NAMESPACE_EXISTS:
                raise
        existing.add(self.name)

    async def _index(self, keys: Sequence[tuple[str, int]], **options: Any) -> None:
        """Create the index unless one on the same keys exists: on a database
        already set up, checking the schema changes nothing."""
        await self._create_collection()
        info = await self.mongo.run(lambda: self.coll.index_information(), schema=True)
        wanted = [(name, 1 if direction > 0 else -1) for name, direction in keys]
        if any(_key_of(index) == wanted for index in info.values()):
            return
        try:
            await self.mongo.run(
                lambda: self.coll.create_index(order_by(keys), **options), schema=True
            )
        except OperationFailure as e:
            # An existing database may already hold an equivalent index made
            # with other options (by Mongoose, say): keep it and say so.
            log.warn(
                "index {keys} on {collection} not created: {error}",
                keys=list(keys),
                collection=self.name,
                error=str(e),
            )
