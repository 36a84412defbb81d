"""Orders through the real ``twistd -n crackershop`` and its embedded
database: no overselling under concurrency, exactly-once placement with
Idempotency-Key, exactly-once restock on cancel, settings-driven totals,
and the repair sweep."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import httpx
import pymongo
import pytest
from bson import ObjectId

from tests.support import Server, wait_until

ADDRESS = {"address": "3 Temple Road", "district": "Sivakasi", "state": "TN", "pincode": "626123"}
# The global rate limit would refuse a load test from one address.
ENV = {"RATE_LIMIT_MAX_REQUESTS": "1000000", "MONGO_MAX_POOL_SIZE": "20"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Shop:
    """A running server with an admin, customers and direct database access."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = server.client(timeout=120)
        uri = (server.workdir / "data" / "db.uri").read_text().strip()
        self.mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(uri)
        self.db = self.mongo["crackershop"]
        self.admin = self.customer("admin")
        self.db.users.update_one({"email": self._emails["admin"]}, {"$set": {"role": "admin"}})
        r = self.http.post(
            "/api/v1/categories", json={"name": f"Cat {uuid.uuid4().hex[:6]}"}, headers=self.a
        )
        assert r.status_code == 201, r.text
        self.category = r.json()["data"]["_id"]

    _emails: dict[str, str] = {}

    @property
    def a(self) -> dict[str, str]:
        return bearer(self.admin)

    def customer(self, name: str) -> str:
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        self._emails[name] = email
        r = self.http.post(
            "/api/v1/auth/register",
            json={"name": name, "email": email, "password": "password123"},
        )
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def product(self, name: str, price: float, quantity: int) -> str:
        r = self.http.post(
            "/api/v1/products",
            json={"name": name, "price": price, "quantity": quantity, "category": self.category},
            headers=self.a,
        )
        assert r.status_code == 201, r.text
        product_id: str = r.json()["data"]["_id"]
        return product_id

    def stock(self, product_id: str) -> int:
        r = self.http.get(f"/api/v1/products/{product_id}", headers=self.a)
        quantity: int = r.json()["data"]["quantity"]
        return quantity

    def order_body(self, lines: list[tuple[str, int]]) -> dict[str, Any]:
        return {
            "orderItems": [{"product": p, "qty": q} for p, q in lines],
            "shippingAddress": ADDRESS,
            "paymentMethod": "COD",
        }

    def all_orders(self) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = []
        page = 1
        while True:
            r = self.http.get(f"/api/v1/orders?page={page}&limit=100", headers=self.a)
            assert r.status_code == 200, r.text
            orders += r.json()["data"]
            if page >= r.json()["pages"]:
                return orders
            page += 1

    def units_ordered(self, product_id: str) -> int:
        return sum(
            item["qty"]
            for order in self.all_orders()
            if order["orderStatus"] != "Cancelled"
            for item in order["orderItems"]
            if item["product"] == product_id
        )

    def records_left(self, *product_ids: str) -> list[Any]:
        return [
            (d.get("reservedBy"), d.get("returnedBy"))
            for d in self.db.products.find({"_id": {"$in": [ObjectId(p) for p in product_ids]}})
            if d.get("reservedBy") or d.get("returnedBy")
        ]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    server = Server(tmp_path_factory.mktemp("orders"), env=ENV)
    shop = Shop(server)
    yield shop
    shop.http.close()
    shop.mongo.close()
    assert server.stop() == 0, server.output()[-3000:]


def post_orders(
    shop: Shop, jobs: list[tuple[str, dict[str, Any], Optional[str]]], threads: int = 20
) -> tuple[list[httpx.Response], float]:
    """Send the orders at once from ``threads`` threads; the responses and seconds taken."""
    start = threading.Barrier(threads)
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = shop.server.client(timeout=120)
            start.wait(60)
        c: httpx.Client = local.client
        return c

    def send(job: tuple[str, dict[str, Any], Optional[str]]) -> httpx.Response:
        token, body, key = job
        headers = bearer(token)
        if key is not None:
            headers["Idempotency-Key"] = key
        return client().post("/api/v1/orders", json=body, headers=headers)

    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        responses = list(pool.map(send, jobs))
    return responses, time.monotonic() - began


@pytest.fixture(scope="module")
def cluster_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The same shop served by a master with two workers."""
    server = Server(tmp_path_factory.mktemp("orders2"), env=ENV, args=["--workers", "2"])
    shop = Shop(server)
    yield shop
    shop.http.close()
    shop.mongo.close()
    assert server.stop() == 0, server.output()[-3000:]


def test_two_hundred_orders_for_fifty_units_never_oversell(shop: Shop) -> None:
    """200 concurrent 1-unit orders from 20 users for stock 50: exactly 50 placed, 150 refused."""
    never_oversell(shop)


def test_two_workers_never_oversell(cluster_shop: Shop) -> None:
    """The same rush against two worker processes: still exactly 50 placed."""
    never_oversell(cluster_shop)


def never_oversell(shop: Shop) -> None:
    product = shop.product("Diwali Rocket", 150, 50)
    users = [shop.customer(f"rush{i}") for i in range(20)]
    jobs = [(users[i % 20], shop.order_body([(product, 1)]), None) for i in range(200)]
    responses, seconds = post_orders(shop, jobs)
    codes = Counter(r.status_code for r in responses)
    print(
        f"\noversell: {len(responses)} requests, {codes[201]} placed, {codes[409]} refused, "
        f"final stock {shop.stock(product)}, {seconds:.2f}s"
    )
    assert codes == {201: 50, 409: 150}, [r.text for r in responses if r.status_code >= 500][:3]
    refusal = next(r.json() for r in responses if r.status_code == 409)
    assert refusal["code"] == "insufficient_stock" and refusal["details"]["product"] == product
    assert refusal["details"]["available"] == "0"
    assert shop.stock(product) == 0
    assert shop.units_ordered(product) == 50
    assert shop.records_left(product) == []


def test_multi_line_orders_are_never_half_reserved(shop: Shop) -> None:
    """Concurrent orders mixing two scarce products: stock taken equals what placed orders hold."""
    x = shop.product("Flowerpot", 120, 30)
    y = shop.product("Chakkar", 110, 20)
    users = [shop.customer(f"mix{i}") for i in range(20)]
    shapes = [[(x, 1), (y, 1)], [(y, 2), (x, 1)], [(x, 2)], [(y, 1), (x, 3)], [(y, 1)]]
    jobs = [(users[i % 20], shop.order_body(shapes[i % 5]), None) for i in range(200)]
    responses, seconds = post_orders(shop, jobs)
    codes = Counter(r.status_code for r in responses)
    print(f"\nmulti-line: {len(responses)} requests, {dict(codes)}, {seconds:.2f}s")
    assert set(codes) <= {201, 409} and codes[201] > 0 and codes[409] > 0
    placed = []
    for response, (_, body, _) in zip(responses, jobs):
        sent = [(line["product"], line["qty"]) for line in body["orderItems"]]
        if response.status_code == 201:
            order = response.json()["data"]
            assert [(i["product"], i["qty"]) for i in order["orderItems"]] == sent
            placed.append(sent)
        else:
            assert response.json()["code"] == "insufficient_stock"
    taken_x = sum(q for lines in placed for p, q in lines if p == x)
    taken_y = sum(q for lines in placed for p, q in lines if p == y)
    stock_x, stock_y = shop.stock(x), shop.stock(y)
    assert stock_x >= 0 and stock_y >= 0
    assert (stock_x, stock_y) == (30 - taken_x, 20 - taken_y)
    assert shop.units_ordered(x) == taken_x and shop.units_ordered(y) == taken_y
    assert shop.records_left(x, y) == []
    assert shop.db.products.count_documents({"quantity": {"$lt": 0}}) == 0


def test_idempotent_replays_create_one_order(shop: Shop) -> None:
    """Sequential and concurrent repeats of one key place one order; another body is a 409."""
    product = shop.product("Sparkler Box", 200, 100)
    user = shop.customer("idem")
    body = shop.order_body([(product, 2)])
    first = shop.http.post(
        "/api/v1/orders", json=body, headers={**bearer(user), "Idempotency-Key": "seq-1"}
    )
    again = shop.http.post(
        "/api/v1/orders", json=body, headers={**bearer(user), "Idempotency-Key": "seq-1"}
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = shop.http.post(
        "/api/v1/orders",
        json=shop.order_body([(product, 3)]),
        headers={**bearer(user), "Idempotency-Key": "seq-1"},
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    responses, _ = post_orders(shop, [(user, body, "conc-1")] * 20, threads=10)
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    ids = {r.json()["data"]["_id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_in_flight"
    mine = shop.http.get("/api/v1/orders/myorders", headers=bearer(user)).json()["data"]
    assert len(mine) == 2
    assert shop.stock(product) == 96


def test_two_concurrent_cancels_restock_once(shop: Shop) -> None:
    """Two admins cancelling at the same moment: one 200, one 409, stock back exactly once."""
    product = shop.product("Atom Bomb", 100, 10)
    user = shop.customer("cancel")
    for _ in range(5):
        r = shop.http.post(
            "/api/v1/orders", json=shop.order_body([(product, 3)]), headers=bearer(user)
        )
        assert r.status_code == 201, r.text
        order_id = r.json()["data"]["_id"]
        assert shop.stock(product) == 7
        barrier = threading.Barrier(2)

        def cancel(_: int, order_id: str = order_id, barrier: Any = barrier) -> int:
            with shop.server.client() as c:
                barrier.wait(30)
                return c.put(
                    f"/api/v1/orders/{order_id}/status",
                    json={"orderStatus": "Cancelled"},
                    headers=shop.a,
                ).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(cancel, range(2)))
        assert codes == [200, 409]
        assert shop.stock(product) == 10
    assert shop.records_left(product) == []


def test_settings_change_applies_to_the_next_order(shop: Shop) -> None:
    """Admin changes to shipping, fees and the minimum show in the very next order's totals."""
    product = shop.product("Twinkling Star", 99.99, 100)
    user = shop.customer("settings")
    first = shop.http.post(
        "/api/v1/orders", json=shop.order_body([(product, 2)]), headers=bearer(user)
    ).json()["data"]
    assert (first["itemsPrice"], first["shippingPrice"], first["taxPrice"]) == (199.98, 50, 0)
    assert first["totalPrice"] == 249.98
    try:
        for path, change in [
            ("shipping", {"baseFee": 75.5, "freeShippingAbove": 150}),
            ("fees", {"packagingFee": 10, "handlingFee": 2.25, "taxRate": 18}),
            ("order-settings", {"minimumOrderAmount": 250}),
        ]:
            r = shop.http.put(f"/api/v1/settings/{path}", json=change, headers=shop.a)
            assert r.status_code == 200, r.text
        refused = shop.http.post(
            "/api/v1/orders", json=shop.order_body([(product, 2)]), headers=bearer(user)
        )
        assert refused.status_code == 400 and "itemsPrice" in refused.json()["details"]
        r = shop.http.post(
            "/api/v1/orders", json=shop.order_body([(product, 3)]), headers=bearer(user)
        )
        order = r.json()["data"]
        assert order["itemsPrice"] == 299.97 and order["shippingPrice"] == 0
        assert order["otherFees"] == 12.25 and order["taxPrice"] == 53.99  # 18% of 299.97
        assert order["totalPrice"] == 366.21
        public = shop.http.get("/api/v1/settings/order-settings").json()["data"]
        assert public["minimumOrderAmount"] == 250
    finally:
        shop.http.put(
            "/api/v1/settings",
            json={
                "shipping": {"baseFee": 50, "freeShippingAbove": 500},
                "fees": {"packagingFee": 0, "handlingFee": 0, "taxRate": 0},
                "orderSettings": {"minimumOrderAmount": 100},
            },
            headers=shop.a,
        )


def test_repair_sweep_releases_a_crashed_reservation(tmp_path: Path) -> None:
    """A reservation left by a crash (order stuck in Reserving) is released by the running sweep."""
    server = Server(tmp_path, env={**ENV, "ORDER_REPAIR_AFTER": "1s"})
    try:
        shop = Shop(server)
        product = shop.product("Bijili", 150, 10)
        order_id = ObjectId()
        long_ago = time.time() - 3600
        stamp = datetime.fromtimestamp(long_ago, tz=timezone.utc)
        # What a process that died between reserving and placing leaves behind:
        shop.db.orders.insert_one(
            {
                "_id": order_id,
                "user": ObjectId(),
                "orderStatus": "Reserving",
                "orderItems": [{"product": ObjectId(product), "qty": 4}],
                "createdAt": stamp,
                "updatedAt": stamp,
            }
        )
        shop.db.products.update_one(
            {"_id": ObjectId(product)},
            {"$inc": {"quantity": -4}, "$push": {"reservedBy": order_id}},
        )
        assert shop.stock(product) == 6
        wait_until(lambda: shop.stock(product) == 10, 30, "the sweep to release the stock")
        assert shop.db.orders.find_one({"_id": order_id})["orderStatus"] == "Failed"  # type: ignore[index]
        assert shop.records_left(product) == []
        shop.http.close()
        shop.mongo.close()
    finally:
        assert server.stop() == 0, server.output()[-3000:]
