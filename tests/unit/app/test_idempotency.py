"""Idempotency-Key when the database goes away mid-placement: a placed order
is never answered with an error that frees its key, and a retry with the
same key never places a second order."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import ensureDeferred

from crackershop.orders.placing import Reservations
from crackershop.orders.repair import repair
from tests.unit.app.test_orders import Shop
from tests.unit.orders.test_placing import run
from tests.unit.store.outage import Outage


class Faulty(Shop):
    def __init__(self) -> None:
        super().__init__()
        self.rocket = self.product("Rocket", 120, 10)
        self.outage = Outage(self.h.store)

    def place(self, key: str = "k-1") -> tuple[int, dict[str, Any], Any]:
        body = {
            "orderItems": [{"product": self.rocket, "qty": 2}],
            "shippingAddress": {"address": "12 Car Street", "district": "Sivakasi",
                                "state": "TN", "pincode": "626123"},
            "paymentMethod": "COD",
        }  # fmt: skip
        return self.h.request(
            "POST", "/api/v1/orders", body, token=self.asha, headers={"Idempotency-Key": key}
        )

    def visible(self) -> list[dict[str, Any]]:
        docs = self.h.store.orders.docs.values()
        return [d for d in docs if d["orderStatus"] not in ("Reserving", "Failed")]

    def record(self) -> dict[str, Any]:
        (record,) = self.h.store.idempotency.docs.values()
        return dict(record)

    def sweeper(self) -> Reservations:
        return Reservations(self.h.store, self.h.clock, 60)


@pytest.fixture
def shop() -> Faulty:
    return Faulty()


def assert_unknown(code: int, body: dict[str, Any], headers: Any) -> None:
    assert code == 503 and body["code"] == "order_outcome_unknown", body
    assert headers.getRawHeaders("retry-after") == ["2"]


def test_commit_landed_then_database_gone_replays_after(shop: Faulty) -> None:
    """The commit lands, the database dies: 503 unknown with Retry-After, the
    key kept; once back, the same key replays that order."""
    shop.outage.fail("orders.transition", landed=True, stay_down=True)
    assert_unknown(*shop.place())
    assert shop.record()["state"] == "running"
    shop.outage.down = False
    code, body, headers = shop.place()
    assert code == 201, body
    assert headers.getRawHeaders("idempotent-replayed") == ["true"]
    (order,) = shop.visible()
    assert body["data"]["_id"] == str(order["_id"]) and shop.stock(shop.rocket) == 8
    assert shop.record()["state"] == "done"
    code, again, headers = shop.place()
    assert code == 201 and again == body


def test_commit_not_landed_is_finished_by_the_retry(shop: Faulty) -> None:
    """The commit does not land and the order cannot be read back: 503
    unknown, the key marked unknown; the retry finishes that placement."""
    shop.outage.fail("orders.transition", landed=False)
    shop.outage.fail("orders.get", landed=False)
    assert_unknown(*shop.place())
    assert shop.record()["unknown"] is True
    assert shop.visible() == [] and shop.stock(shop.rocket) == 8  # reserved, not released
    code, body, headers = shop.place()
    assert code == 201 and headers.getRawHeaders("idempotent-replayed") == ["true"]
    (order,) = shop.visible()
    assert body["data"]["_id"] == str(order["_id"]) and shop.stock(shop.rocket) == 8


def test_retry_while_still_away_is_unknown_again(shop: Faulty) -> None:
    """A retry of an unknown placement while the database cannot say is
    unknown again, and keeps the key."""
    shop.outage.fail("orders.transition", landed=False)
    shop.outage.fail("orders.get", landed=False)
    assert_unknown(*shop.place())
    shop.outage.fail("orders.transition", landed=False, stay_down=True)
    assert_unknown(*shop.place())
    assert shop.record()["unknown"] is True
    shop.outage.down = False
    code, _, _ = shop.place()
    assert code == 201 and len(shop.visible()) == 1 and shop.stock(shop.rocket) == 8


def test_unknown_placement_swept_first_is_placed_afresh(shop: Faulty) -> None:
    """An unknown placement that the sweep abandoned before the retry: the
    retry places one new order; the stock is taken once."""
    shop.outage.fail("orders.transition", landed=False)
    shop.outage.fail("orders.get", landed=False)
    assert_unknown(*shop.place())
    shop.h.clock.advance(61)
    first = shop.record()["order"]
    assert run(repair(shop.sweeper()))["released"] == 1
    assert shop.stock(shop.rocket) == 10
    code, _, headers = shop.place()
    assert code == 201 and headers.getRawHeaders("idempotent-replayed") is None
    (order,) = shop.visible()
    assert order["_id"] != first and shop.stock(shop.rocket) == 8


def test_key_left_running_waits_then_takes_over(shop: Faulty) -> None:
    """Unknown with the database away for good (the key could not be marked):
    retries are in flight until the delay, then one order is placed in all."""
    shop.outage.fail("orders.transition", landed=False, stay_down=True)
    assert_unknown(*shop.place())
    shop.outage.down = False
    assert "unknown" not in shop.record()
    code, body, _ = shop.place()
    assert code == 409 and body["code"] == "idempotency_in_flight"
    shop.h.clock.advance(61)
    code, body, _ = shop.place()
    assert code == 201, body
    assert len(shop.visible()) == 1 and shop.stock(shop.rocket) == 8


def test_request_that_created_nothing_frees_its_key(shop: Faulty) -> None:
    """A database error before the commit: 503 database_unavailable and the
    key is free at once; the retry places the order (not a replay)."""
    shop.outage.fail("stock.reserve", landed=False)
    code, body, headers = shop.place()
    assert code == 503 and body["code"] == "database_unavailable"
    assert headers.getRawHeaders("retry-after") == ["2"]
    assert shop.h.store.idempotency.docs == {}
    code, body, headers = shop.place()
    assert code == 201 and headers.getRawHeaders("idempotent-replayed") is None
    assert len(shop.visible()) == 1 and shop.stock(shop.rocket) == 8


def test_failed_placement_seen_by_a_retry_frees_the_key(shop: Faulty) -> None:
    """The key could not be released, but its placement is seen Failed: the
    retry takes the key over at once."""
    shop.outage.fail("stock.reserve", landed=False)
    shop.outage.fail("orders.transition", landed=False)  # the abandon
    shop.outage.fail("idempotency.drop", landed=False)
    code, _, _ = shop.place()
    assert code == 503 and shop.record()["state"] == "running"
    order_id = shop.record()["order"]
    run(shop.sweeper().abandon(shop.h.store.orders.docs[order_id]))
    code, _, _ = shop.place()
    assert code == 201 and len(shop.visible()) == 1 and shop.stock(shop.rocket) == 8


def test_response_not_recorded_still_answers_the_order(shop: Faulty) -> None:
    """Placed, then storing the response fails: still 201; a retry replays it."""
    shop.outage.fail("idempotency.complete", landed=False)
    code, first, _ = shop.place()
    assert code == 201 and shop.record()["state"] == "running"
    code, again, headers = shop.place()
    assert code == 201 and again["data"]["_id"] == first["data"]["_id"]
    assert headers.getRawHeaders("idempotent-replayed") == ["true"]
    assert len(shop.visible()) == 1 and shop.stock(shop.rocket) == 8


def test_a_request_cut_off_after_its_commit_keeps_its_key() -> None:
    """The request's deadline cuts it off after its order is placed (here
    while the customer is being told): the 503 keeps the key, and the retry
    replays that order instead of placing a second one."""
    import json

    from twisted.internet.defer import Deferred

    from tests.unit.app.harness import Harness

    h = Harness(request_timeout=5.0)
    admin = h.admin()
    asha = h.register("asha@example.com")
    created = ensureDeferred(
        h.store.products.create(
            {"name": "Rocket", "price": 120, "quantity": 10, "status": "Active"}
        )
    )
    rocket = str(created.result["_id"])
    h.request("PUT", "/api/v1/settings/order-settings", {"minimumOrderAmount": 0}, token=admin)
    body = {
        "orderItems": [{"product": rocket, "qty": 1}],
        "shippingAddress": "12 Car Street\nPhone: 9876543210",
        "paymentMethod": "Requested",
    }
    headers = {
        "Authorization": f"Bearer {asha}",
        "Content-Type": "application/json",
        "Idempotency-Key": "cut-off",
    }
    told = h.store.notifications.create_many

    async def hangs(docs: Any) -> int:
        await Deferred()
        return 0

    h.store.notifications.create_many = hangs  # type: ignore[method-assign]
    results: list[Any] = []
    d = h.treq.post("http://shop.test/api/v1/orders", data=json.dumps(body), headers=headers)
    d.addCallback(lambda r: h.treq.content(r).addCallback(lambda c: results.append((r.code, c))))
    h.treq.flush()
    assert results == []
    h.clock.advance(5)
    h.treq.flush()
    assert results[0][0] == 503
    h.store.notifications.create_many = told  # type: ignore[method-assign]
    orders = [o for o in h.store.orders.docs.values() if o["orderStatus"] == "Requested"]
    assert len(orders) == 1
    code, reply, got = h.request(
        "POST", "/api/v1/orders", body, token=asha, headers={"Idempotency-Key": "cut-off"}
    )
    assert code == 201 and reply["data"]["_id"] == str(orders[0]["_id"])
    assert got.getRawHeaders("idempotent-replayed") == ["true"]
    assert [o["orderStatus"] for o in h.store.orders.docs.values()] == ["Requested"]
