"""Placing orders and repairing them over the in-memory store: what a crash or a stall
leaves behind is released or finished, and never twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bson import ObjectId
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.task import Clock

from crackershop.errors import DatabaseUnavailable
from crackershop.orders.placing import (
    InsufficientStock,
    PlacementAbandoned,
    PlacementUnknown,
    Reservations,
)
from crackershop.orders.repair import RepairService, repair
from crackershop.store.memory import MemoryStore
from tests.unit.store.outage import Outage


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
    assert run(repair(w.res))["released"] == 0  # too young: may still be running
    assert w.qty(w.a) == 7
    w.clock.advance(61)
    assert run(repair(w.res))["released"] == 1
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5
    assert w.store.products.docs[w.a["_id"]]["reservedBy"] == []
    assert w.store.orders.docs[order["_id"]]["orderStatus"] == "Failed"
    run(repair(w.res))
    assert w.qty(w.a) == 10  # not released twice


def test_crash_after_placing_keeps_the_stock_and_clears_records(w: World) -> None:
    """A placed order whose records were not cleared keeps its stock; the sweep clears them."""
    order = w.order(3, 2)
    run(w.store.orders.insert({**order, "orderStatus": "Reserving"}))
    run(w.store.stock.reserve(w.a["_id"], 3, order["_id"]))
    run(w.store.stock.reserve(w.b["_id"], 2, order["_id"]))
    run(w.store.orders.transition(order["_id"], "Reserving", {"orderStatus": "Requested"}))
    w.clock.advance(61)
    counts = run(repair(w.res))
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
    assert run(repair(w.res))["restocked"] == 1
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5
    assert w.store.orders.docs[placed["_id"]]["stockReturned"] is True
    assert w.store.products.docs[w.a["_id"]]["returnedBy"] == []
    run(repair(w.res))
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5


def test_cancel_twice_returns_once(w: World) -> None:
    """Only the caller whose guarded status change won returns the stock."""
    placed = run(w.res.place(w.order(3, 2), w.products))
    assert run(w.res.cancel(placed, "Requested")) is True
    assert run(w.res.cancel(placed, "Requested")) is False
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5


def test_failed_line_releases_the_others(w: World) -> None:
    """Too few of B: A goes back, the order stays Failed and hidden until it expires."""
    order = w.order(3, 6)
    with pytest.raises(InsufficientStock) as e:
        run(w.res.place(order, w.products))
    assert e.value.details == {"product": str(w.b["_id"]), "name": "B", "available": "5",
                               "requested": "6"}  # fmt: skip
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5
    failed = w.store.orders.docs[order["_id"]]
    assert failed["orderStatus"] == "Failed" and failed["released"] is True
    assert failed["expireAt"] == failed["updatedAt"] + timedelta(hours=1)
    w.clock.advance(3599)
    assert run(w.store.orders.get(order["_id"])) is not None
    w.clock.advance(2)
    assert run(w.store.orders.get(order["_id"])) is None
    assert order["_id"] not in w.store.orders.docs


def test_sweep_dates_failed_placements_left_without_expiry(w: World) -> None:
    """Failed placements released before expiry existed get one from the sweep, and go."""
    order = w.order(3, 2)
    run(w.store.orders.insert({**order, "orderStatus": "Failed", "released": True}))
    assert run(repair(w.res))["expired"] == 1
    assert run(repair(w.res))["expired"] == 0
    w.clock.advance(3601)
    assert run(w.store.orders.get(order["_id"])) is None


def test_failed_placement_is_kept_for_ten_repair_delays_when_longer(w: World) -> None:
    """With a repair delay of 10 min, a failed placement is kept 100 min, not 1 h."""
    res = Reservations(w.store, w.clock, repair_after=600)
    order = w.order(3, 6)
    with pytest.raises(InsufficientStock):
        run(res.place(order, w.products))
    failed = w.store.orders.docs[order["_id"]]
    assert failed["expireAt"] - failed["updatedAt"] == timedelta(minutes=100)


def test_sweep_still_releases_a_late_reservation_of_a_failed_placement(w: World) -> None:
    """A reservation landing after its placement failed goes back, before the order expires."""
    order = w.order(3, 6)
    with pytest.raises(InsufficientStock):
        run(w.res.place(order, w.products))
    assert run(w.store.stock.reserve(w.a["_id"], 3, order["_id"]))  # the late one
    assert w.qty(w.a) == 7
    w.clock.advance(61)
    assert run(repair(w.res))["released"] == 1
    assert w.qty(w.a) == 10 and w.store.products.docs[w.a["_id"]]["reservedBy"] == []


def test_commit_answer_lost_but_database_back_is_placed(w: World) -> None:
    """The commit landed and its answer was lost: the order is read back as
    placed and returned, not refused."""
    outage = Outage(w.store)
    outage.fail("orders.transition", landed=True)
    placed = run(w.res.place(w.order(3, 2), w.products))
    assert placed["orderStatus"] == "Requested"
    assert w.qty(w.a) == 7 and w.qty(w.b) == 3
    assert w.store.products.docs[w.a["_id"]]["reservedBy"] == []


def test_commit_that_did_not_land_is_asked_again(w: World) -> None:
    """The commit failed without landing and the database is back: it is asked again."""
    outage = Outage(w.store)
    outage.fail("orders.transition", landed=False)
    placed = run(w.res.place(w.order(3, 2), w.products))
    assert placed["orderStatus"] == "Requested"
    assert outage.calls.count("orders.transition") == 2
    assert w.qty(w.a) == 7 and w.qty(w.b) == 3


@pytest.mark.parametrize("landed", [True, False])
def test_database_gone_during_commit_is_unknown_and_releases_nothing(
    w: World, landed: bool
) -> None:
    """The database goes away during the commit: PlacementUnknown (503,
    Retry-After), nothing given back; once it is back, resolve() returns the
    placed order, finishing the commit if it had not landed."""
    outage = Outage(w.store)
    outage.fail("orders.transition", landed=landed, stay_down=True)
    order = w.order(3, 2)
    with pytest.raises(PlacementUnknown) as e:
        run(w.res.place(order, w.products))
    assert e.value.status == 503 and e.value.headers == {"Retry-After": "2"}
    assert w.qty(w.a) == 7 and w.qty(w.b) == 3
    expected = "Requested" if landed else "Reserving"
    assert w.store.orders.docs[order["_id"]]["orderStatus"] == expected
    if not landed:
        with pytest.raises(PlacementUnknown):  # still away: still unknown
            run(w.res.resolve(w.store.orders.docs[order["_id"]]))
    outage.down = False
    placed = run(w.res.resolve(w.store.orders.docs[order["_id"]]))
    assert placed is not None and placed["orderStatus"] == "Requested"
    assert w.qty(w.a) == 7 and w.qty(w.b) == 3
    assert w.store.products.docs[w.a["_id"]]["reservedBy"] == []


def test_unknown_placement_abandoned_by_the_sweep_resolves_to_nothing(w: World) -> None:
    """An unknown commit that never landed loses to the sweep: resolve() says
    not placed, and the stock is back."""
    outage = Outage(w.store)
    outage.fail("orders.transition", landed=False, stay_down=True)
    order = w.order(3, 2)
    with pytest.raises(PlacementUnknown):
        run(w.res.place(order, w.products))
    outage.down = False
    w.clock.advance(61)
    assert run(repair(w.res))["released"] == 1
    assert run(w.res.resolve(w.store.orders.docs[order["_id"]])) is None
    assert w.qty(w.a) == 10 and w.qty(w.b) == 5


def test_database_gone_while_reserving_is_a_plain_failure(w: World) -> None:
    """Before the commit the outcome is certain: DatabaseUnavailable, and the
    sweep gives back what was taken."""
    outage = Outage(w.store)
    outage.fail("stock.reserve", landed=True, stay_down=True)
    order = w.order(3, 2)
    with pytest.raises(DatabaseUnavailable) as e:
        run(w.res.place(order, w.products))
    assert not isinstance(e.value, PlacementUnknown)
    assert w.qty(w.a) == 7
    outage.down = False
    w.clock.advance(61)
    run(repair(w.res))
    assert w.qty(w.a) == 10 and w.store.orders.docs[order["_id"]]["orderStatus"] == "Failed"


def test_database_gone_after_the_commit_still_answers_the_order(w: World) -> None:
    """Placed, then the database goes away: the order is answered (built
    without reading it back) and the sweep clears the records later."""
    outage = Outage(w.store)
    outage.fail("stock.settle", landed=False, stay_down=True)
    order = w.order(3, 2)
    placed = run(w.res.place(order, w.products))
    assert placed["_id"] == order["_id"] and placed["orderStatus"] == "Requested"
    outage.down = False
    w.clock.advance(61)
    assert run(repair(w.res))["settled"] == 2
    assert w.qty(w.a) == 7 and w.qty(w.b) == 3


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
    assert run(repair(w.res))["released"] == 1
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
    service = RepairService(w.clock, 60, lambda: succeed(w.store))
    service.startService()
    order = w.order(3, 2)
    run(w.store.orders.insert({**order, "orderStatus": "Reserving"}))
    run(w.store.stock.reserve(w.a["_id"], 3, order["_id"]))
    w.clock.advance(60)  # the order is exactly 60 s old: not yet
    assert w.qty(w.a) == 7
    w.clock.advance(60)
    assert w.qty(w.a) == 10
    service.stopService()
    assert not w.clock.getDelayedCalls()
