"""The settings, orders, stock and idempotency stores hold to one contract
in memory and on the real embedded database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest_twisted
from bson import ObjectId
from twisted.internet.defer import DeferredList, ensureDeferred

from crackershop.store.interfaces import IStore
from tests.integration.test_store_contract import store  # noqa: F401 (the fixture)


@pytest_twisted.ensureDeferred
async def test_settings_created_once_with_defaults(store: IStore) -> None:  # noqa: F811
    """Concurrent first reads create one document with the defaults; updates merge per field."""
    results = await DeferredList([ensureDeferred(store.settings.get()) for _ in range(5)])
    ids = {r[1]["_id"] for r in results}
    assert len(ids) == 1
    doc = results[0][1]
    assert doc["shipping"]["baseFee"] == 50 and doc["orderSettings"]["minimumOrderAmount"] == 100
    updated = await store.settings.update({"shipping": {"baseFee": 40}, "fees": {"taxRate": 5}})
    assert updated["shipping"] == {"baseFee": 40, "freeShippingAbove": 500, "description": ""}
    assert updated["fees"]["taxRate"] == 5 and updated["fees"]["packagingFee"] == 0
    assert (await store.settings.get())["_id"] == doc["_id"]


@pytest_twisted.ensureDeferred
async def test_stock_moves_are_guarded_and_recorded(store: IStore) -> None:  # noqa: F811
    """reserve/unreserve/restock apply at most once per order and never below zero."""
    p = await store.products.create({"name": "Rocket", "price": 10.0, "quantity": 5})
    pid, o1, o2 = p["_id"], ObjectId(), ObjectId()
    assert await store.stock.reserve(pid, 3, o1)
    assert not await store.stock.reserve(pid, 1, o1)  # already reserved for o1
    assert not await store.stock.reserve(pid, 3, o2)  # only 2 left
    assert await store.stock.available(pid) == 2
    assert await store.stock.available(ObjectId()) == 0
    marked = await store.stock.marked()
    assert marked == [{"_id": pid, "reservedBy": [o1], "returnedBy": []}]
    assert await store.stock.unreserve(pid, 3, o1)
    assert not await store.stock.unreserve(pid, 3, o1)
    assert await store.stock.available(pid) == 5
    assert await store.stock.reserve(pid, 5, o2)
    await store.stock.settle(pid, o2)
    assert not await store.stock.unreserve(pid, 5, o2)  # settled: stays taken
    assert await store.stock.available(pid) == 0
    assert await store.stock.restock(pid, 5, o2)
    assert not await store.stock.restock(pid, 5, o2)
    assert await store.stock.available(pid) == 5
    await store.stock.settle_restock(pid, o2)
    assert await store.stock.marked() == []
    assert not await store.stock.reserve(ObjectId(), 1, o1)
    found = await store.stock.by_ids([pid, ObjectId()])
    assert [d["_id"] for d in found] == [pid]


@pytest_twisted.ensureDeferred
async def test_order_listing_hides_unfinished_orders(store: IStore) -> None:  # noqa: F811
    """Reserving/Failed orders are not listed; transition is guarded by the current status."""
    user = ObjectId()
    base = datetime(2026, 10, 1, tzinfo=timezone.utc)
    ids = []
    for i, status in enumerate(["Requested", "Reserving", "Processing", "Failed"]):
        doc = await store.orders.insert(
            {
                "user": user,
                "orderStatus": status,
                "orderItems": [],
                "createdAt": base + timedelta(minutes=i),
                "updatedAt": base + timedelta(minutes=i),
                **({"released": False} if status == "Failed" else {}),
            }
        )
        ids.append(doc["_id"])
    mine = await store.orders.for_user(user)
    assert [d["_id"] for d in mine] == [ids[2], ids[0]]
    page = await store.orders.list(1, 1, None)
    assert page.total == 2 and [d["_id"] for d in page.items] == [ids[2]]
    page = await store.orders.list(1, 10, "Requested")
    assert [d["_id"] for d in page.items] == [ids[0]]
    assert await store.orders.transition(ids[0], "Requested", {"orderStatus": "Processing"})
    assert not await store.orders.transition(ids[0], "Requested", {"orderStatus": "Cancelled"})
    assert (await store.orders.get(ids[0]))["orderStatus"] == "Processing"  # type: ignore[index]
    old = await store.orders.unfinished(datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert sorted(d["_id"] for d in old) == sorted([ids[1], ids[3]])
    assert await store.orders.unfinished(base) == []


@pytest_twisted.ensureDeferred
async def test_idempotency_records(store: IStore) -> None:  # noqa: F811
    """The first claim of (user, key) wins; later claims see it; drop and complete work."""
    user = ObjectId()
    record: dict[str, Any] = {"user": user, "key": "k", "hash": "h", "state": "running"}
    results = await DeferredList(
        [ensureDeferred(store.idempotency.claim({**record, "_id": ObjectId()})) for _ in range(4)]
    )
    winners = [r[1] for r in results if r[1] is None]
    assert len(winners) == 1
    seen = next(r[1] for r in results if r[1] is not None)
    assert await store.idempotency.claim({**record, "_id": ObjectId(), "user": ObjectId()}) is None
    await store.idempotency.complete(seen["_id"], 201, '{"ok":1}')
    again = await store.idempotency.claim({**record, "_id": ObjectId()})
    assert again is not None and again["state"] == "done" and again["status"] == 201
    assert not await store.idempotency.drop(seen["_id"], running_only=True)
    assert await store.idempotency.drop(seen["_id"], running_only=False)
    assert await store.idempotency.claim({**record, "_id": ObjectId()}) is None
