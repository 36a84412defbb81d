"""One contract for both stores: the in-memory one used by unit tests must
behave like the MongoDB one (run against the real embedded database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from bson import ObjectId
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from crackershop.errors import DuplicateKey
from crackershop.store.database import MongoStore
from crackershop.store.interfaces import IStore, ProductQuery
from crackershop.store.memory import MemoryStore
from crackershop.store.mongo import open_pool
from tests.support import Secantus


@pytest.fixture(params=["memory", "mongo"])
def store(request: pytest.FixtureRequest) -> Iterator[IStore]:
    if request.param == "memory":
        yield MemoryStore(reactor)
        return
    secantus: Secantus = request.getfixturevalue("secantus")
    pool = open_pool(secantus.uri, 2)
    db = pool["contract_" + uuid.uuid4().hex[:12]]
    mongo = MongoStore(db, reactor, 10.0)
    pytest_twisted.blockon(Deferred.fromCoroutine(mongo.ensure_indexes()))
    yield mongo
    pytest_twisted.blockon(pool.disconnect())


async def _catalogue(store: IStore) -> Any:
    cat = await store.categories.create({"name": "Rockets", "status": "Active"})
    other = await store.categories.create({"name": "Bombs", "status": "Inactive"})
    for i, name in enumerate(["Alpha (big)", "beta", "Gamma", "delta"]):
        await store.products.create(
            {
                "name": name,
                "price": float(10 * (i + 1)),
                "category": cat["_id"] if i % 2 == 0 else other["_id"],
                "isFeatured": i < 2,
                "status": "Inactive" if name == "delta" else "Active",
                "description": "a Diwali favourite",
                "createdAt": __import__("datetime").datetime(
                    2026, 1, 1 + i, tzinfo=__import__("datetime").timezone.utc
                ),
            }
        )
    return cat, other


@pytest_twisted.ensureDeferred
async def test_unique_fields(store: IStore) -> None:
    """Duplicate emails, category names and SKUs raise DuplicateKey naming the field."""
    await store.users.create({"email": "a@b.co", "name": "A"})
    with pytest.raises(DuplicateKey) as e:
        await store.users.create({"email": "a@b.co", "name": "B"})
    assert e.value.field == "email"
    await store.categories.create({"name": "Rockets"})
    with pytest.raises(DuplicateKey):
        await store.categories.create({"name": "Rockets"})
    await store.products.create({"name": "A", "sku": "S1", "price": 1.0})
    await store.products.create({"name": "B", "price": 1.0})
    await store.products.create({"name": "C", "price": 1.0})
    with pytest.raises(DuplicateKey):
        await store.products.create({"name": "D", "sku": "S1", "price": 1.0})


@pytest_twisted.ensureDeferred
async def test_product_queries(store: IStore) -> None:
    """Filters, search, sorting and paging agree between the stores."""
    cat, _ = await _catalogue(store)
    page = await store.products.list(ProductQuery())
    assert [p["name"] for p in page.items] == ["Gamma", "beta", "Alpha (big)"]
    assert page.total == 3
    page = await store.products.list(ProductQuery(include_inactive=True, sort="price"))
    assert [p["name"] for p in page.items] == ["Alpha (big)", "beta", "Gamma", "delta"]
    page = await store.products.list(ProductQuery(category=cat["_id"], sort="name"))
    assert [p["name"] for p in page.items] == ["Alpha (big)", "Gamma"]
    page = await store.products.list(ProductQuery(search="(BIG", sort="name"))
    assert [p["name"] for p in page.items] == ["Alpha (big)"]
    page = await store.products.list(ProductQuery(search=".*"))
    assert page.items == [] and page.total == 0
    page = await store.products.list(ProductQuery(featured=True, min_price=15, max_price=20))
    assert [p["name"] for p in page.items] == ["beta"]
    page = await store.products.list(ProductQuery(page=2, limit=2, sort="-price"))
    assert [p["name"] for p in page.items] == ["Alpha (big)"] and page.total == 3
    assert await store.products.count_in_category(cat["_id"]) == 2


@pytest_twisted.ensureDeferred
async def test_all_active_products(store: IStore) -> None:
    """all_active reads every product not Inactive, by name, with only the fields asked for."""
    cat, other = await _catalogue(store)
    for i in range(105):  # more than a first reply batch of the driver
        await store.products.create({"name": f"Zed {i:03d}", "price": 1.0, "status": "Active"})
    found = await store.products.all_active(["name", "price", "category"])
    names = [p["name"] for p in found]
    assert names[:3] == ["Alpha (big)", "Gamma", "Zed 000"] and names[-1] == "beta"
    assert len(found) == 108 and "delta" not in names
    assert all(set(p) <= {"_id", "name", "price", "category"} for p in found)
    assert found[0]["price"] == 10.0 and found[0]["category"] == cat["_id"]
    assert found[-1]["category"] == other["_id"]


@pytest_twisted.ensureDeferred
async def test_updates_and_deletes(store: IStore) -> None:
    """update returns the document after the change; missing ids give None/False."""
    user = await store.users.create({"email": "u@b.co", "name": "U"})
    updated = await store.users.update(user["_id"], {"name": "V"}, inc={"tokenVersion": 1})
    assert updated is not None and updated["name"] == "V" and updated["tokenVersion"] == 1
    assert (await store.users.get(user["_id"]))["tokenVersion"] == 1  # type: ignore[index]
    assert await store.users.update(ObjectId(), {"name": "W"}) is None
    assert await store.users.by_email("u@b.co") is not None
    assert await store.users.delete(user["_id"]) is True
    assert await store.users.delete(user["_id"]) is False
    cats = await store.categories.list(include_inactive=False)
    assert cats == []


@pytest_twisted.ensureDeferred
async def test_categories_by_ids_and_listing(store: IStore) -> None:
    """Categories list by name, hiding Inactive ones unless asked."""
    cat, other = await _catalogue(store)
    assert [c["name"] for c in await store.categories.list(include_inactive=True)] == [
        "Bombs",
        "Rockets",
    ]
    assert [c["name"] for c in await store.categories.list(include_inactive=False)] == ["Rockets"]
    found = await store.categories.by_ids([cat["_id"], other["_id"], ObjectId()])
    assert sorted(c["name"] for c in found) == ["Bombs", "Rockets"]


@pytest_twisted.ensureDeferred
async def test_chit_uniqueness_and_membership_moves(store: IStore) -> None:
    """One membership per user and scheme, one payment per month; status moves are guarded."""
    user, scheme = ObjectId(), ObjectId()
    await store.chit.add_member({"user": user, "scheme": scheme, "status": "Pending"})
    with pytest.raises(DuplicateKey) as e:
        await store.chit.add_member({"user": user, "scheme": scheme, "status": "Pending"})
    assert e.value.field == "member"
    assert await store.chit.set_member_status(user, scheme, ["Approved"], "Rejected") is None
    moved = await store.chit.set_member_status(user, scheme, ["Pending"], "Approved")
    assert moved is not None and moved["status"] == "Approved"
    await store.chit.add_payment({"user": user, "scheme": scheme, "monthIndex": 1})
    await store.chit.add_payment({"user": ObjectId(), "scheme": scheme, "monthIndex": 1})
    with pytest.raises(DuplicateKey) as e:
        await store.chit.add_payment({"user": user, "scheme": scheme, "monthIndex": 1})
    assert e.value.field == "monthIndex"
    assert [p["monthIndex"] for p in await store.chit.payments(scheme, user)] == [1]
    assert len(await store.chit.payments(scheme)) == 2


@pytest_twisted.ensureDeferred
async def test_notifications_belong_to_their_user(store: IStore) -> None:
    """Listing counts unread; marking and deleting only touch the owner's."""
    alice, bob = ObjectId(), ObjectId()
    await store.notifications.create_many(
        [{"user": alice, "title": str(i), "message": "m", "type": "system"} for i in range(3)]
    )
    items, unread = await store.notifications.list_for(alice, 2)
    assert len(items) == 2 and unread == 3
    assert await store.notifications.mark_read(bob, items[0]["_id"]) is None
    assert (await store.notifications.mark_read(alice, items[0]["_id"]))["isRead"] is True  # type: ignore[index]
    assert await store.notifications.mark_all_read(alice) == 2
    assert await store.notifications.delete(bob, items[0]["_id"]) is False
    assert await store.notifications.delete(alice, items[0]["_id"]) is True


@pytest_twisted.ensureDeferred
async def test_user_ids_by_role_in_batches(store: IStore) -> None:
    """ids_with_role pages through active users of a role in id order."""
    made = []
    for i in range(5):
        doc = await store.users.create(
            {"email": f"r{i}@b.co", "role": "customer", "status": "Blocked" if i == 2 else "Active"}
        )
        made.append(doc["_id"])
    await store.users.create({"email": "admin@b.co", "role": "admin"})
    first = await store.users.ids_with_role("customer", None, 2)
    rest = await store.users.ids_with_role("customer", first[-1], 10)
    assert first + rest == [m for i, m in enumerate(made) if i != 2]


@pytest_twisted.ensureDeferred
async def test_dashboard_figures(store: IStore) -> None:
    """Aggregation pipelines and brute force give the same, hand-checked figures."""
    from datetime import datetime, timezone

    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    day = 86400.0
    a, b = ObjectId(), ObjectId()
    await store.products.create({"name": "A", "price": 10.0, "quantity": 0, "isFeatured": True})
    await store.products.create({"name": "B", "price": 5.0, "quantity": 9})
    await store.products.create(
        {"name": "C", "price": 5.0, "quantity": 3, "status": "Out of Stock"}
    )
    await store.users.create({"email": "d1@b.co"})
    await store.users.create({"email": "d2@b.co"})

    def at(days_ago: float) -> datetime:
        return datetime.fromtimestamp(now.timestamp() - days_ago * day, tz=timezone.utc)

    orders = [
        # status, paid, paid days ago, created days ago, total, items
        ("Requested", False, None, 1, 30.0, [(a, 3, 10.0)]),
        ("Processing", True, 2, 2, 25.5, [(a, 1, 10.0), (b, 3, 5.0)]),
        ("Delivered", True, 40, 45, 100.0, [(b, 20, 5.0)]),
        ("Delivered", True, 0.5, 3, 12.25, [(a, 1, 10.0)]),
        ("Cancelled", True, 1, 1, 999.0, [(a, 50, 10.0)]),
        ("Reserving", False, None, 0, 50.0, [(b, 10, 5.0)]),
        ("Failed", False, None, 0, 50.0, [(b, 10, 5.0)]),
    ]
    for status, paid, paid_ago, created_ago, total, items in orders:
        await store.orders.insert(
            {
                "_id": ObjectId(),
                "user": ObjectId(),
                "orderStatus": status,
                "isPaid": paid,
                "paidAt": at(paid_ago) if paid_ago is not None else None,
                "createdAt": at(created_ago),
                "totalPrice": total,
                "orderItems": [
                    {"product": p, "qty": q, "price": pr, "name": "A" if p == a else "B"}
                    for p, q, pr in items
                ],
            }
        )
    stats = await store.dashboard.stats(now)
    assert stats == {
        "orders": {"total": 5, "recent": 4, "pending": 1, "processing": 1, "delivered": 2},
        "products": {"total": 3, "outOfStock": 2, "featured": 1},
        "users": {"total": 2},
        "revenue": {"total": 137.75, "thisMonth": 37.75, "average": 45.92},
    }
    sales = await store.dashboard.sales(at(7))
    assert sales == [
        {"date": "2026-11-26", "revenue": 25.5},
        {"date": "2026-11-28", "revenue": 12.25},
    ]
    top = await store.dashboard.top_products(5)
    assert top == [
        {"product": b, "name": "B", "sold": 23, "revenue": 115.0},
        {"product": a, "name": "A", "sold": 5, "revenue": 50.0},
    ]
