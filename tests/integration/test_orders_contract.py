"""The settings, orders, stock and idempotency stores hold to one contract
in memory and on the real embedded database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pymongo
import pytest
import pytest_twisted
from bson import ObjectId
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred

from crackershop.orders.placing import InsufficientStock, Reservations
from crackershop.orders.repair import repair
from crackershop.store.interfaces import IStore
from tests.integration.test_store_contract import store  # noqa: F401 (the fixture)
from tests.support import Secantus


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


@pytest_twisted.ensureDeferred
async def test_orders_past_their_expiry_are_removed(
    store: IStore,  # noqa: F811
    secantus: Secantus,
) -> None:
    """An order whose expireAt has passed goes away (a TTL index); one with a
    later expireAt, or none, stays."""
    now = datetime.now(timezone.utc)
    base = {"user": ObjectId(), "orderStatus": "Failed", "released": True, "orderItems": []}
    gone = await store.orders.insert({**base, "expireAt": now - timedelta(seconds=1)})
    later = await store.orders.insert({**base, "expireAt": now + timedelta(hours=1)})
    placed = await store.orders.insert({**base, "orderStatus": "Requested", "released": None})
    # the database's TTL monitor, run now rather than on its minute
    with pymongo.MongoClient(secantus.uri, directConnection=True) as client:
        client.admin.command("secantusAdmin.pruneTtl")
    assert await store.orders.get(gone["_id"]) is None
    assert await store.orders.get(later["_id"]) is not None
    assert await store.orders.get(placed["_id"]) is not None


@pytest_twisted.ensureDeferred
async def test_refused_placement_expires_and_the_sweep_still_works(store: IStore) -> None:  # noqa: F811
    """A refused order is left Failed, released, hidden, with an expireAt an
    hour on; the repair sweep still finds the stuck ones it must release."""
    product = await store.products.create({"name": "Rocket", "price": 10.0, "quantity": 2})
    reservations = Reservations(store, reactor, repair_after=60)
    order = {
        "_id": ObjectId(),
        "user": ObjectId(),
        "orderItems": [{"product": product["_id"], "qty": 3}],
    }
    with pytest.raises(InsufficientStock):
        await reservations.place(order, {product["_id"]: product})
    failed = await store.orders.get(order["_id"])
    assert failed is not None and failed["orderStatus"] == "Failed" and failed["released"]
    kept = failed["expireAt"] - failed["updatedAt"]
    assert timedelta(minutes=59) < kept <= timedelta(hours=1)
    assert (await store.orders.list(1, 10, None)).total == 0
    # a placement that died holding stock is still released by the sweep
    stuck = {**order, "_id": ObjectId(), "orderItems": [{"product": product["_id"], "qty": 1}]}
    old = datetime.now(timezone.utc) - timedelta(minutes=5)
    await store.orders.insert({**stuck, "orderStatus": "Reserving", "updatedAt": old})
    assert await store.stock.reserve(product["_id"], 1, stuck["_id"])
    assert (await repair(reservations))["released"] == 1
    assert await store.stock.available(product["_id"]) == 2
    released = await store.orders.get(stuck["_id"])
    assert released is not None and released["expireAt"] > datetime.now(timezone.utc)


@pytest_twisted.ensureDeferred
async def test_released_failed_orders_without_expiry_get_one(store: IStore) -> None:  # noqa: F811
    """expire_released dates only released Failed orders that have no expireAt."""
    at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    base = {"user": ObjectId(), "orderItems": []}
    old = await store.orders.insert({**base, "orderStatus": "Failed", "released": True})
    holding = await store.orders.insert({**base, "orderStatus": "Failed", "released": False})
    placed = await store.orders.insert({**base, "orderStatus": "Requested"})
    assert await store.orders.expire_released(at) == 1
    assert await store.orders.expire_released(at) == 0
    assert (await store.orders.get(old["_id"]))["expireAt"] == at  # type: ignore[index]
    for doc in (holding, placed):
        assert "expireAt" not in (await store.orders.get(doc["_id"]) or {})


@pytest_twisted.ensureDeferred
async def test_idempotency_record_marked_unknown(store: IStore) -> None:  # noqa: F811
    """mark_unknown flags a running record, which stays claimed; a done one is left alone."""
    user = ObjectId()
    running = {"_id": ObjectId(), "user": user, "key": "u", "hash": "h", "state": "running"}
    assert await store.idempotency.claim(running) is None
    await store.idempotency.mark_unknown(running["_id"])
    seen = await store.idempotency.claim({**running, "_id": ObjectId()})
    assert seen is not None and seen["unknown"] is True and seen["state"] == "running"
    done = {**running, "_id": ObjectId(), "key": "d"}
    assert await store.idempotency.claim(done) is None
    await store.idempotency.complete(done["_id"], 201, "{}")
    await store.idempotency.mark_unknown(done["_id"])
    seen = await store.idempotency.claim({**done, "_id": ObjectId()})
    assert seen is not None and "unknown" not in seen and seen["state"] == "done"
