"""Orders over the in-memory store: pricing from the database and settings,
validation, stock, status transitions, access rules and idempotency."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from bson import ObjectId
from twisted.internet.defer import Deferred, ensureDeferred

from crackershop.app.http import dumps
from crackershop.app.routing import Reply, ok
from crackershop.errors import Conflict
from crackershop.orders.idempotency import Idempotency, Replies
from tests.unit.app.harness import Harness

ADDRESS = {"address": "12 Car Street", "district": "Sivakasi", "state": "TN", "pincode": "626123"}


class Shop:
    def __init__(self) -> None:
        self.h = Harness()
        self.admin = self.h.admin()
        self.asha = self.h.register("asha@example.com")
        self.ravi = self.h.register("ravi@example.com", name="Ravi")

    def product(self, name: str, price: float, quantity: int, **extra: Any) -> str:
        doc = self.h.store.products.docs
        created = ensureDeferred(
            self.h.store.products.create(
                {"name": name, "price": price, "quantity": quantity, "status": "Active", **extra}
            )
        )
        result: list[dict[str, Any]] = []
        created.addCallback(result.append)
        assert result and result[0]["_id"] in doc
        return str(result[0]["_id"])

    def stock(self, product_id: str) -> int:
        quantity: int = self.h.store.products.docs[ObjectId(product_id)]["quantity"]
        return quantity

    def order(
        self,
        lines: list[tuple[str, Any]],
        token: Optional[str] = None,
        key: Optional[str] = None,
        **extra: Any,
    ) -> tuple[int, dict[str, Any]]:
        body = {
            "orderItems": [{"product": p, "qty": q} for p, q in lines],
            "shippingAddress": ADDRESS,
            "paymentMethod": "COD",
            **extra,
        }
        headers = {"Idempotency-Key": key} if key is not None else None
        code, reply, _ = self.h.request(
            "POST", "/api/v1/orders", body, token=token or self.asha, headers=headers
        )
        return code, reply

    def status(self, order_id: str, status: str) -> tuple[int, dict[str, Any]]:
        code, reply, _ = self.h.request(
            "PUT", f"/api/v1/orders/{order_id}/status", {"status": status}, token=self.admin
        )
        return code, reply


@pytest.fixture
def shop() -> Shop:
    return Shop()


def test_totals_come_from_the_database_and_settings(shop: Shop) -> None:
    """Names, list prices and totals are the server's, in the shape the app's
    order screens read: list prices on the lines, the whole discount in
    discountPrice; fees and tax apply to the discounted items."""
    sparkler = shop.product("Sparkler", 80.5, 10, discountPrice=70.25, image="s.png")
    rocket = shop.product("Rocket", 120, 10)
    code, _, _ = shop.h.request(
        "PUT",
        "/api/v1/settings/fees",
        {"packagingFee": 15, "handlingFee": 5.5, "taxRate": 18},
        token=shop.admin,
    )
    assert code == 200
    code, body = shop.order([(sparkler, 3), (rocket, 1)])
    assert code == 201, body
    order = body["data"]
    assert [(i["name"], i["price"], i["qty"], i["image"]) for i in order["orderItems"]] == [
        ("Sparkler", 80.5, 3, "s.png"),
        ("Rocket", 120.0, 1, ""),
    ]
    assert order["itemsPrice"] == 361.5  # 3 x 80.50 + 120 at list prices
    assert order["taxPrice"] == 59.54  # 18% of 330.75 = 59.535, rounded half up
    assert order["shippingPrice"] == 50  # below the free-shipping threshold of 500
    assert order["otherFees"] == 20.5
    assert order["discountPrice"] == 30.75  # 3 x (80.50 - 70.25) saved
    assert order["totalPrice"] == 460.79  # 361.50 - 30.75 + 59.54 + 50 + 20.50
    items = sum(i["price"] * i["qty"] for i in order["orderItems"])
    # how the admin's order screen adds it up
    assert (
        round(
            items
            - order["discountPrice"]
            + order["taxPrice"]
            + order["shippingPrice"]
            + order["otherFees"],
            2,
        )
        == order["totalPrice"]
    )
    assert order["orderStatus"] == "Requested" and order["isPaid"] is False
    assert "stockReturned" not in order and "released" not in order
    assert shop.stock(sparkler) == 7 and shop.stock(rocket) == 9
    _, product, _ = shop.h.request("GET", f"/api/v1/products/{sparkler}", token=shop.admin)
    assert product["data"]["quantity"] == 7
    assert "reservedBy" not in product["data"] and "returnedBy" not in product["data"]


def test_client_prices_are_ignored(shop: Shop) -> None:
    """The app's own line names, prices, images and totals are accepted and
    ignored: the order carries the database's figures."""
    rocket = shop.product("Rocket", 120, 10)
    code, body, _ = shop.h.request(
        "POST",
        "/api/v1/orders",
        {
            "orderItems": [
                {"product": rocket, "qty": 1, "price": 1, "name": "Free rocket", "image": "x"}
            ],
            "shippingAddress": "1 Main St, Sivakasi - 626123\nPhone: 9876543210",
            "paymentMethod": "Requested",
            "itemsPrice": 1,
            "discountPrice": 56.00000000000001,
            "shippingPrice": 0,
            "otherFees": 0,
            "taxPrice": 0,
            "totalPrice": 1,
        },
        token=shop.asha,
    )
    assert code == 201, body
    order = body["data"]
    assert order["orderItems"][0]["price"] == 120 and order["orderItems"][0]["name"] == "Rocket"
    assert (order["itemsPrice"], order["discountPrice"], order["totalPrice"]) == (120, 0, 170)
    assert order["shippingAddress"] == "1 Main St, Sivakasi - 626123\nPhone: 9876543210"
    assert shop.stock(rocket) == 9
    # still strict about what it does not know
    code, body = shop.order([(rocket, 1)], coupon="FREE")
    assert code == 400 and body["details"] == {"coupon": "is not a field this request takes"}


def test_free_shipping_and_minimum_order(shop: Shop) -> None:
    """Shipping is free from freeShippingAbove; below the minimum is a 400 reserving nothing."""
    flowerpot = shop.product("Flowerpot", 250, 10)
    code, body = shop.order([(flowerpot, 2)])
    assert code == 201 and body["data"]["shippingPrice"] == 0
    assert body["data"]["totalPrice"] == 500
    cheap = shop.product("Pencil", 30, 10)
    code, body = shop.order([(cheap, 3)])
    assert code == 400 and "itemsPrice" in body["details"]
    assert shop.stock(cheap) == 10
    code, _, _ = shop.h.request(
        "PUT", "/api/v1/settings/order-settings", {"minimumOrderAmount": 50}, token=shop.admin
    )
    assert code == 200
    code, body = shop.order([(cheap, 3)])
    assert code == 201 and body["data"]["shippingPrice"] == 50


@pytest.mark.parametrize(
    ("qty", "detail"),
    [
        (0, "orderItems.0.qty"),
        (-1, "orderItems.0.qty"),
        (1.5, "orderItems.0.qty"),
        ("2", "orderItems.0.qty"),
        (True, "orderItems.0.qty"),
        (10_001, "orderItems.0.qty"),
    ],
)
def test_bad_quantities(shop: Shop, qty: Any, detail: str) -> None:
    """Quantities that are not positive integers are a 400 naming the line; nothing reserved."""
    rocket = shop.product("Rocket", 120, 10)
    code, body = shop.order([(rocket, qty)])
    assert code == 400 and detail in body["details"], body
    assert shop.stock(rocket) == 10


def test_unknown_inactive_duplicate_and_too_many_lines(shop: Shop) -> None:
    """Unknown/Inactive products, duplicate lines, too many lines: 400s, nothing reserved."""
    rocket = shop.product("Rocket", 120, 10)
    hidden = shop.product("Old Bomb", 100, 10, status="Inactive")
    missing = str(ObjectId())
    code, body = shop.order([(rocket, 1), (missing, 1), (hidden, 1)])
    assert code == 400
    assert body["details"] == {
        "orderItems.1.product": "no such product",
        "orderItems.2.product": "this product is not available",
    }
    code, body = shop.order([(rocket, 1), (rocket.upper(), 2)])
    assert code == 400 and "orderItems.1.product" in body["details"]
    code, body = shop.order([(str(ObjectId()), 1) for _ in range(51)])
    assert code == 400 and body["details"] == {"orderItems": "at most 50 lines"}
    code, body = shop.order([])
    assert code == 400 and "orderItems" in body["details"]
    assert shop.stock(rocket) == 10 and shop.stock(hidden) == 10
    assert shop.h.store.orders.docs == {}


def test_insufficient_stock_releases_reserved_lines(shop: Shop) -> None:
    """A line that cannot be reserved is a 409 naming it and what is left; earlier lines go back."""
    rocket = shop.product("Rocket", 120, 10)
    bomb = shop.product("Atom Bomb", 90, 2)
    code, body = shop.order([(rocket, 4), (bomb, 3)])
    assert code == 409 and body["code"] == "insufficient_stock"
    assert body["details"] == {
        "product": bomb,
        "name": "Atom Bomb",
        "available": "2",
        "requested": "3",
    }
    assert "Atom Bomb" in body["error"]
    assert shop.stock(rocket) == 10 and shop.stock(bomb) == 2
    product = shop.h.store.products.docs[ObjectId(rocket)]
    assert product.get("reservedBy") == []
    code, _ = shop.order([(rocket, 4), (bomb, 2)])
    assert code == 201
    assert shop.stock(rocket) == 6 and shop.stock(bomb) == 0
    code, body = shop.order([(bomb, 2)])
    assert code == 409 and body["details"]["available"] == "0"


def test_access_rules(shop: Shop) -> None:
    """Customers see only their own orders (others' are 404); admins see and list all."""
    rocket = shop.product("Rocket", 120, 10)
    _, mine = shop.order([(rocket, 1)])
    shop.h.clock.advance(1)
    _, theirs = shop.order([(rocket, 2)], token=shop.ravi)
    mine_id, theirs_id = mine["data"]["_id"], theirs["data"]["_id"]
    h = shop.h
    assert h.request("GET", f"/api/v1/orders/{mine_id}", token=shop.asha)[0] == 200
    code, body, _ = h.request("GET", f"/api/v1/orders/{theirs_id}", token=shop.asha)
    assert code == 404 and body["error"] == "Order not found"
    assert h.request("GET", f"/api/v1/orders/{theirs_id}", token=shop.admin)[0] == 200
    assert h.request("GET", "/api/v1/orders/not-an-id", token=shop.admin)[0] == 404
    assert h.request("GET", f"/api/v1/orders/{mine_id}")[0] == 401
    code, body, _ = h.request("GET", "/api/v1/orders/myorders", token=shop.asha)
    assert code == 200 and [o["_id"] for o in body["data"]] == [mine_id]
    assert h.request("GET", "/api/v1/orders", token=shop.asha)[0] == 403
    code, body, _ = h.request("GET", "/api/v1/orders?limit=1", token=shop.admin)
    assert code == 200 and body["total"] == 2 and body["pages"] == 2
    assert [o["_id"] for o in body["data"]] == [theirs_id]
    assert h.request("PUT", f"/api/v1/orders/{mine_id}/status", {"orderStatus": "Processing"},
                     token=shop.asha)[0] == 403  # fmt: skip
    shop.status(mine_id, "Processing")
    code, body, _ = h.request("GET", "/api/v1/orders?status=Processing", token=shop.admin)
    assert [o["_id"] for o in body["data"]] == [mine_id] and body["total"] == 1
    code, body, _ = h.request("GET", "/api/v1/orders?status=Lost", token=shop.admin)
    assert code == 400 and "status" in body["details"]


def test_status_transitions(shop: Shop) -> None:
    """Forward along the life; Delivered sets isDelivered/deliveredAt; invalid moves are 409."""
    rocket = shop.product("Rocket", 120, 10)
    _, body = shop.order([(rocket, 1)])
    order_id = body["data"]["_id"]
    assert shop.status(order_id, "Requested")[0] == 409
    assert shop.status(order_id, "Processing")[0] == 200
    code, body = shop.status(order_id, "Requested")
    assert code == 409 and body["code"] == "invalid_transition"
    assert shop.status(order_id, "Shipped")[0] == 200
    assert shop.status(order_id, "Out for Delivery")[0] == 200
    code, body = shop.status(order_id, "Delivered")
    assert code == 200 and body["data"]["isDelivered"] is True
    assert body["data"]["deliveredAt"].endswith("Z")
    assert shop.status(order_id, "Cancelled")[0] == 409
    assert shop.status(order_id, "Processing")[0] == 409
    code, body = shop.status(order_id, "Lost")
    assert code == 400
    assert shop.stock(rocket) == 9


def test_order_events_notify_the_owner_and_the_admins(shop: Shop) -> None:
    """Placing tells the owner and every admin; each status change and the
    payment reach the owner, and no other customer."""
    rocket = shop.product("Rocket", 120, 10)
    _, body = shop.order([(rocket, 1)])
    order_id = body["data"]["_id"]
    _, told, _ = shop.h.request("GET", "/api/v1/notifications", token=shop.admin)
    assert [(n["type"], n["data"]["orderId"]) for n in told["data"]] == [("order", order_id)]
    assert shop.status(order_id, "Processing")[0] == 200
    assert shop.status(order_id, "Shipped")[0] == 200
    code, _, _ = shop.h.request(
        "PUT", f"/api/v1/orders/{order_id}/payment", {"isPaid": True}, token=shop.admin
    )
    assert code == 200
    _, notes, _ = shop.h.request("GET", "/api/v1/notifications", token=shop.asha)
    assert [n["title"] for n in notes["data"]] == [
        "Payment confirmed",
        "Order shipped",
        "Order processing",
        "Order placed",
    ]
    assert all(n["type"] == "order" and n["data"]["orderId"] == order_id for n in notes["data"])
    _, others, _ = shop.h.request("GET", "/api/v1/notifications", token=shop.ravi)
    assert others["count"] == 0


def test_cancel_returns_stock_once(shop: Shop) -> None:
    """Cancelling returns each line's stock; cancelling again is a 409 and returns nothing."""
    rocket = shop.product("Rocket", 120, 10)
    bomb = shop.product("Bomb", 90, 5)
    _, body = shop.order([(rocket, 3), (bomb, 2)])
    order_id = body["data"]["_id"]
    shop.status(order_id, "Shipped")
    assert shop.stock(rocket) == 7 and shop.stock(bomb) == 3
    code, body = shop.status(order_id, "Cancelled")
    assert code == 200 and body["data"]["orderStatus"] == "Cancelled"
    assert shop.stock(rocket) == 10 and shop.stock(bomb) == 5
    assert shop.status(order_id, "Cancelled")[0] == 409
    assert shop.status(order_id, "Processing")[0] == 409
    assert shop.stock(rocket) == 10 and shop.stock(bomb) == 5
    assert shop.h.store.products.docs[ObjectId(rocket)]["returnedBy"] == []


def test_payment(shop: Shop) -> None:
    """Payment sets isPaid/paidAt/paymentResult; unpaid clears paidAt; bad bodies are 400."""
    rocket = shop.product("Rocket", 120, 10)
    _, body = shop.order([(rocket, 1)])
    order_id = body["data"]["_id"]
    path = f"/api/v1/orders/{order_id}/payment"
    result = {"id": "pay_1", "status": "captured", "amount": 170}
    code, body, _ = shop.h.request(
        "PUT", path, {"isPaid": True, "paymentResult": result}, token=shop.admin
    )
    assert code == 200 and body["data"]["isPaid"] is True
    assert body["data"]["paidAt"].endswith("Z") and body["data"]["paymentResult"] == result
    code, body, _ = shop.h.request("PUT", path, {"isPaid": "yes"}, token=shop.admin)
    assert code == 400
    code, body, _ = shop.h.request("PUT", path, {"isPaid": False}, token=shop.admin)
    assert code == 200 and body["data"]["paidAt"] is None
    code, _, _ = shop.h.request("PUT", path, {"isPaid": True}, token=shop.asha)
    assert code == 403


def test_idempotent_replay(shop: Shop) -> None:
    """Same key and body replays the first 201 and creates nothing; another body is a 409."""
    rocket = shop.product("Rocket", 120, 10)
    code, first = shop.order([(rocket, 2)], key="k-1")
    assert code == 201
    code, again = shop.order([(rocket, 2)], key="k-1")
    assert code == 201 and again == first
    assert len(shop.h.store.orders.docs) == 1 and shop.stock(rocket) == 8
    code, body = shop.order([(rocket, 3)], key="k-1")
    assert code == 409 and body["code"] == "idempotency_key_reused"
    code, other = shop.order([(rocket, 2)], key="k-1", token=shop.ravi)
    assert code == 201 and other["data"]["_id"] != first["data"]["_id"]
    assert shop.stock(rocket) == 6


def test_idempotency_key_expires_after_a_day(shop: Shop) -> None:
    """After 24 h the same key places a new order."""
    rocket = shop.product("Rocket", 120, 10)
    _, first = shop.order([(rocket, 1)], key="daily")
    shop.h.clock.advance(24 * 3600 + 1)
    _, login, _ = shop.h.request(
        "POST", "/api/v1/auth/login", {"email": "asha@example.com", "password": "password123"}
    )
    code, second = shop.order([(rocket, 1)], key="daily", token=login["token"])
    assert code == 201 and second["data"]["_id"] != first["data"]["_id"]


def test_failed_request_releases_its_key(shop: Shop) -> None:
    """A request that fails (409 stock) leaves its key free for a retry that can succeed."""
    rocket = shop.product("Rocket", 120, 1)
    code, _ = shop.order([(rocket, 2)], key="retry")
    assert code == 409
    shop.h.store.products.docs[ObjectId(rocket)]["quantity"] = 5
    code, _ = shop.order([(rocket, 2)], key="retry")
    assert code == 201


def test_bad_idempotency_keys(shop: Shop) -> None:
    """Keys over 255 characters or empty are a 400."""
    rocket = shop.product("Rocket", 120, 10)
    code, body = shop.order([(rocket, 1)], key="x" * 256)
    assert code == 400 and "Idempotency-Key" in body["details"]
    code, _ = shop.order([(rocket, 1)], key="x" * 255)
    assert code == 201


def test_key_in_flight_is_a_conflict(shop: Shop) -> None:
    """While the first request with a key runs, a second is a 409; afterwards it replays."""
    store, clock = shop.h.store, shop.h.clock

    async def no_order(order_id: ObjectId) -> Optional[Reply]:
        return None

    idem = Idempotency(store, clock, 60.0, Replies(Reply, dumps, no_order))
    gate: Deferred[None] = Deferred()
    user = ObjectId()

    async def slow() -> Reply:
        await gate
        return ok({"n": 1}, 201)

    first = ensureDeferred(idem.run(user, "k", "h1", ObjectId(), slow))
    second = ensureDeferred(idem.run(user, "k", "h1", ObjectId(), slow))
    failure: list[Any] = []
    second.addErrback(failure.append)
    assert failure and failure[0].check(Conflict)
    assert failure[0].value.code == "idempotency_in_flight"
    gate.callback(None)
    done: list[Reply] = []
    first.addCallback(done.append)
    assert done[0].status == 201
    replay: list[Reply] = []
    ensureDeferred(idem.run(user, "k", "h1", ObjectId(), slow)).addCallback(replay.append)
    assert replay[0].body == {"success": True, "data": {"n": 1}}
    assert replay[0].headers == {"Idempotent-Replayed": "true"}


def test_abandoned_key_replays_its_placed_order(shop: Shop) -> None:
    """A key left running by a crash answers at once with its order if that was placed."""
    rocket = shop.product("Rocket", 120, 10)
    _, first = shop.order([(rocket, 1)], key="crash")
    record = next(iter(shop.h.store.idempotency.docs.values()))
    record.update(state="running", status=None, body=None)  # as if it died before recording
    code, body = shop.order([(rocket, 1)], key="crash")
    assert code == 201 and body["data"]["_id"] == first["data"]["_id"]
    assert len(shop.h.store.orders.docs) == 1 and shop.stock(rocket) == 9
    assert shop.h.store.idempotency.docs[record["_id"]]["state"] == "done"


def test_status_body_takes_status_or_order_status(shop: Shop) -> None:
    """{status} (the app) and {orderStatus} both move an order; neither, or
    two that disagree, is a 400 that says so."""
    rocket = shop.product("Rocket", 120, 10)
    _, body = shop.order([(rocket, 1)])
    path = f"/api/v1/orders/{body['data']['_id']}/status"
    code, reply, _ = shop.h.request("PUT", path, {}, token=shop.admin)
    assert code == 400 and reply["error"] == "The new status is required"
    code, reply, _ = shop.h.request(
        "PUT", path, {"status": "Shipped", "orderStatus": "Processing"}, token=shop.admin
    )
    assert code == 400
    code, reply, _ = shop.h.request("PUT", path, {"status": "Lost"}, token=shop.admin)
    assert code == 400 and reply["error"].startswith("Status must be one of Requested")
    code, reply, _ = shop.h.request("PUT", path, {"orderStatus": "Processing"}, token=shop.admin)
    assert code == 200 and reply["data"]["orderStatus"] == "Processing"
    assert reply["data"]["user"]["name"] == "Asha"
