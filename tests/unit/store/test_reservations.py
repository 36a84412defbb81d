"""Reservation repair over the in-memory store: what a crash or a stall
leaves behind is released or finished, and never twice."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from bson import ObjectId
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from crackershop.store.memory import MemoryStore
from crackershop.store.reservations import (
    InsufficientStock,
    PlacementAbandoned,
    RepairService,
    Reservations,
)


def run(coro: Any) -> Any:
    results: list[Any] = []
    ensureDeferred(coro).addBoth(results.append)
    assert results, "did not finish synchronously"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_790_000_000)
        self.store = MemoryStore(self.clock)
        self.res = Reservations(self.store, self.clock, repair_after=60)
        self.a = run(self.store.products.create({"name": "A", "price": 10, "quantity": 10}))
        self.b = run(self.store.products.create({"name": "B", "price": 20, "quantity": 5}))
        self.products = {self.a["_id"]: self.a, self.b["_id"]: self.b}

    def qty(self, product: dict[str, Any]) -> int:
        value: int = self.store.products.docs[product["_id"]]["quantity"]
        return value

    def order(self, qa: int, qb: int) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.clock.seconds(), tz=timezone.utc)
        return {
            "_id": ObjectId(),
            "user": ObjectId(),
            "orderItems": [
                {"product": self.a["_id"], "qty": qa},
                {"product": self.b["_id"], "qty": qb},
            ],
            "createdAt": now,
            "updatedAt": now,
        }


@pytest.fixture
def w() -> World:
    return World()


def test_crash_mid_reservation_is_released_after_the_delay(w: World) -> None:
    """An order stuck in Reserving with one line taken gets it back once, after repair_after."""
    order = w.order(3, 2)
    run(w.store.orders.insert({**order, "orderStatus": "Reserving"}))
    assert run(w.store.stock.reserve(w.a["_id"], 3, order["_id"]))
    assert run(w.res.repair())["released"] == 0  # too young: may still be running
    assert w.qty(w.a) == 7
    w.clock.advance(61)
    assert run(w.res.repair())["released"] == 1
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5
    assert w.store.products.docs[w.a["_id"]]["reservedBy"] == []
    assert w.store.orders.docs[order["_id"]]["orderStatus"] == "Failed"
    run(w.res.repair())
    assert w.qty(w.a) == 10  # not released twice


def test_crash_after_placing_keeps_the_stock_and_clears_records(w: World) -> None:
    """A placed order whose records were not cleared keeps its stock; the sweep clears them."""
    order = w.order(3, 2)
    run(w.store.orders.insert({**order, "orderStatus": "Reserving"}))
    run(w.store.stock.reserve(w.a["_id"], 3, order["_id"]))
    run(w.store.stock.reserve(w.b["_id"], 2, order["_id"]))
    run(w.store.orders.transition(order["_id"], "Reserving", {"orderStatus": "Requested"}))
    w.clock.advance(61)
    counts = run(w.res.repair())
    assert counts["settled"] == 2 and counts["released"] == 0
    assert w.qty(w.a) == 7 and w.qty(w.b) == 3
    assert w.store.products.docs[w.a["_id"]]["reservedBy"] == []


def test_crash_mid_cancel_returns_each_line_once(w: World) -> None:
    """A cancellation that returned one line before dying gets only the other line back."""
    order = w.order(3, 2)
    placed = run(w.res.place(order, w.products))
    assert w.qty(w.a) == 7 and w.qty(w.b) == 3
    run(
        w.store.orders.transition(
            placed["_id"], "Requested", {"orderStatus": "Cancelled", "stockReturned": False}
        )
    )
    run(w.store.stock.restock(w.a["_id"], 3, placed["_id"]))  # then the process died
    w.clock.advance(61)
    assert run(w.res.repair())["restocked"] == 1
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5
    assert w.store.orders.docs[placed["_id"]]["stockReturned"] is True
    assert w.store.products.docs[w.a["_id"]]["returnedBy"] == []
    run(w.res.repair())
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5


def test_cancel_twice_returns_once(w: World) -> None:
    """Only the caller whose guarded status change won returns the stock."""
    placed = run(w.res.place(w.order(3, 2), w.products))
    assert run(w.res.cancel(placed, "Requested")) is True
    assert run(w.res.cancel(placed, "Requested")) is False
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5


def test_failed_line_releases_the_others(w: World) -> None:
    """Too few of B: A goes back, the order stays Failed and hidden."""
    order = w.order(3, 6)
    with pytest.raises(InsufficientStock) as e:
        run(w.res.place(order, w.products))
    assert e.value.details == {"product": str(w.b["_id"]), "name": "B", "available": "5",
                               "requested": "6"}  # fmt: skip
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5
    assert w.store.orders.docs[order["_id"]]["orderStatus"] == "Failed"


class GatedStock:
    """The memory stock, pausing before the second reservation."""

    def __init__(self, stock: Any, gate: Deferred[None]) -> None:
        self._stock = stock
        self.gate = gate
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stock, name)

    async def reserve(self, product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        self.calls += 1
        if self.calls == 2:
            await self.gate
        ok: bool = await self._stock.reserve(product_id, qty, order_id)
        return ok


def test_stalled_placement_loses_to_the_sweep_and_keeps_nothing(w: World) -> None:
    """A placement stalled past repair_after is abandoned; what it reserves later goes back too."""
    gate: Deferred[None] = Deferred()
    real = w.store.stock
    w.store.stock = GatedStock(real, gate)  # type: ignore[assignment]
    order = w.order(3, 2)
    placing = ensureDeferred(w.res.place(order, w.products))
    assert w.qty(w.a) == 7
    w.clock.advance(61)
    w.store.stock = real
    assert run(w.res.repair())["released"] == 1
    assert w.qty(w.a) == 10
    w.store.stock = GatedStock(real, gate)  # type: ignore[assignment]
    w.store.stock.calls = 1  # type: ignore[attr-defined]
    failures: list[Any] = []
    placing.addErrback(failures.append)
    gate.callback(None)
    assert failures and failures[0].check(PlacementAbandoned)
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5


def test_repair_service_sweeps_at_start_and_periodically(w: World) -> None:
    """The service sweeps when started and every interval on the injected clock."""
    service = RepairService(w.clock, 60)
    service.startService()
    service.begin(w.res)
    order = w.order(3, 2)
    run(w.store.orders.insert({**order, "orderStatus": "Reserving"}))
    run(w.store.stock.reserve(w.a["_id"], 3, order["_id"]))
    w.clock.advance(60)  # the order is exactly 60 s old: not yet
    assert w.qty(w.a) == 7
    w.clock.advance(60)
    assert w.qty(w.a) == 10
    service.stopService()
    assert not w.clock.getDelayedCalls()
