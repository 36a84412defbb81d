"""The schema is set up before the store is used, and checking it on a
database already set up changes nothing."""

from __future__ import annotations

from typing import Any

from pymongo.errors import OperationFailure
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.task import Clock

from crackershop.store.mongo import Mongo
from crackershop.store.users import MongoUsers


class Recording:
    """A database that records each command and index build, in order."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.calls: list[tuple[str, str]] = []

        self.indexes: dict[str, list[Any]] = {}

    def collection_names(self) -> Deferred[list[str]]:
        self.calls.append(("listCollections", ""))
        return succeed(sorted(self.existing))

    def command(self, name: str, value: Any) -> Deferred[dict[str, Any]]:
        self.calls.append((name, value))
        if value in self.existing:
            raise OperationFailure("collection already exists", code=48)
        self.existing.add(value)
        return succeed({"ok": 1})

    def __getitem__(self, name: str) -> Any:
        db = self

        class Collection:
            def index_information(self) -> Deferred[dict[str, Any]]:
                made = db.indexes.get(name, [])
                return succeed({f"i{n}": {"key": dict(k)} for n, k in enumerate(made)})

            def create_index(self, keys: Any, **options: Any) -> Deferred[str]:
                db.calls.append(("createIndex", name))
                db.indexes.setdefault(name, []).append(list(keys["orderby"]))
                return succeed("index")

        return Collection()


def build(db: Recording) -> tuple[MongoUsers, list[Any]]:
    done: list[Any] = []
    users = MongoUsers(Mongo(db, Clock(), 5.0))
    ensureDeferred(users.ensure_indexes()).addBoth(done.append)
    return users, done


def test_the_collection_is_created_before_its_first_index() -> None:
    """A new collection is created explicitly, once, before any index: the
    embedded database stops taking writes when an insert that creates a
    collection races with collections or indexes being made."""
    db = Recording(set())
    _, done = build(db)
    assert done == [None]
    made = [c for c in db.calls if c[0] != "listCollections"]
    assert made[0] == ("create", "users")
    assert {c[0] for c in made[1:]} == {"createIndex"}


def test_a_database_already_set_up_is_left_alone() -> None:
    """When the collection and its indexes exist, nothing is created."""
    db = Recording(set())
    build(db)
    first = len(db.calls)
    _, done = build(db)
    assert done == [None]
    assert [c for c in db.calls[first:] if c[0] != "listCollections"] == []


def test_the_store_refuses_work_until_its_schema_is_in_place() -> None:
    """Before the schema is in place a store call is a 503: "database
    unavailable" until the database has answered, "starting" after; the
    schema's own calls run, and once it is in place everything does."""
    from crackershop.errors import DatabaseStarting, DatabaseUnavailable
    from crackershop.store.database import MongoStore

    store = MongoStore(Recording(set()), Clock(), 5.0)
    failed: list[Any] = []
    ensureDeferred(store.ping()).addErrback(failed.append)
    assert failed[0].check(DatabaseUnavailable) and not failed[0].check(DatabaseStarting)
    ensureDeferred(store.mongo.existing_collections())
    ensureDeferred(store.ping()).addErrback(failed.append)
    assert failed[1].check(DatabaseStarting)
    ensureDeferred(store.ensure_indexes())
    assert store.mongo.schema_ready
