"""Index builds never race the implicit creation of their collection."""

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

    def command(self, name: str, value: Any) -> Deferred[dict[str, Any]]:
        self.calls.append((name, value))
        if value in self.existing:
            raise OperationFailure("collection already exists", code=48)
        self.existing.add(value)
        return succeed({"ok": 1})

    def __getitem__(self, name: str) -> Any:
        db = self

        class Collection:
            def create_index(self, keys: Any, **options: Any) -> Deferred[str]:
                db.calls.append(("createIndex", name))
                return succeed("index")

        return Collection()


def build(existing: set[str]) -> tuple[Recording, list[Any]]:
    db = Recording(existing)
    done: list[Any] = []
    users = MongoUsers(Mongo(db, Clock(), 5.0))
    ensureDeferred(users.ensure_indexes()).addBoth(done.append)
    return db, done


def test_the_collection_is_created_before_its_first_index() -> None:
    """A new collection is created explicitly, once, before any index: the
    embedded database stops taking writes when createIndexes creates it
    while an insert does too."""
    db, done = build(set())
    assert done == [None]
    assert db.calls[0] == ("create", "users")
    assert [c for c in db.calls if c[0] == "create"] == [("create", "users")]
    assert {c[0] for c in db.calls[1:]} == {"createIndex"}


def test_an_existing_collection_is_kept() -> None:
    """A collection that exists already (NamespaceExists) is fine."""
    db, done = build({"users"})
    assert done == [None]
    assert db.calls[0] == ("create", "users") and len(db.calls) > 1
