"""The database killed (SIGKILL) and restarted while keyed orders pour into a
real two-worker server: every key ends with exactly one order, a placed
order is never answered with an error that frees its key, and the stock
adds up."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pymongo

from tests.support import Secantus, Server, wait_until

KEYS = 240
THREADS = 12
STOCK = 100_000
# Answers a retry may follow: the outcome is unknown or nothing was made.
RETRYABLE = {
    (503, "order_outcome_unknown"),
    (503, "database_unavailable"),
    (503, "service_unavailable"),
    (409, "idempotency_in_flight"),
    (409, "order_abandoned"),
}


def body(key: int, products: list[str]) -> dict[str, Any]:
    """A body unique to its key (the address names it), so orders can be counted per key."""
    return {
        "orderItems": [{"product": products[key % len(products)], "qty": 1 + key % 3}],
        "shippingAddress": {
            "address": f"{key} Car Street",
            "district": "Sivakasi",
            "state": "TN",
            "pincode": "626123",
        },
        "paymentMethod": "COD",
    }


class Load:
    """Keyed orders from THREADS clients, each key retried until it is placed."""

    def __init__(self, server: Server, tokens: list[str], products: list[str]) -> None:
        self.server = server
        self.tokens = tokens
        self.products = products
        self.answers: list[tuple[int, int, str, bool]] = []  # key, status, code, has Retry-After
        self.placed: dict[int, tuple[str, bool]] = {}  # key -> (order id, replayed)
        self.lock = threading.Lock()
        self.local = threading.local()
        self.deadline = time.monotonic() + 150

    def client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = self.server.client(timeout=20)
        c: httpx.Client = self.local.client
        return c

    def done(self) -> int:
        with self.lock:
            return len(self.placed)

    def errors(self) -> int:
        with self.lock:
            return sum(1 for a in self.answers if a[1] >= 500)

    def place(self, key: int) -> None:
        headers = {
            "Authorization": f"Bearer {self.tokens[key % len(self.tokens)]}",
            "Idempotency-Key": f"fault-{key}",
        }
        while time.monotonic() < self.deadline:
            r = self.client().post("/api/v1/orders", json=body(key, self.products), headers=headers)
            reply = r.json()
            code = "" if r.status_code == 201 else str(reply.get("code"))
            with self.lock:
                self.answers.append((key, r.status_code, code, "retry-after" in r.headers))
            if r.status_code == 201:
                replayed = r.headers.get("idempotent-replayed") == "true"
                with self.lock:
                    self.placed[key] = (reply["data"]["_id"], replayed)
                return
            if (r.status_code, code) not in RETRYABLE:
                return  # counted as a failure below
            wait = float(r.headers.get("retry-after", "0.2"))
            time.sleep(min(wait, 2.0))  # as a client does between retries


def kill(db: Secantus) -> None:
    os.kill(db.pid, signal.SIGKILL)
    db.proc.wait(10)


def test_database_killed_under_keyed_orders(tmp_path: Path) -> None:
    """Kill -9 the database twice during 240 keyed orders on two workers:
    one order per key, no placed order refused, stock consistent."""
    # durable: without --sync-on-commit a killed database forgets the last
    # writes it acknowledged, placed orders among them
    db = Secantus(tmp_path / "db", durable=True)
    uri = db.uri + "/faults"
    mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(uri, directConnection=True)
    ids = mongo.faults.products.insert_many(
        [
            {"name": f"Rocket {i}", "price": 150.0, "quantity": STOCK, "status": "Active"}
            for i in range(3)
        ]
    ).inserted_ids
    products = [str(i) for i in ids]
    server = Server(
        tmp_path / "srv",
        env={"MONGO_URI": uri, "REQUEST_TIMEOUT": "3s", "ORDER_REPAIR_AFTER": "3s"},
        args=["--workers", "2"],
    )
    restarts = 0
    try:
        tokens = []
        with server.client() as c:
            for i in range(4):
                r = c.post(
                    "/api/v1/auth/register",
                    json={
                        "name": "Buyer",
                        "email": f"buyer{i}@example.com",
                        "password": "pw123456",
                    },
                )
                assert r.status_code == 201, r.text
                tokens.append(r.json()["token"])
        load = Load(server, tokens, products)
        began = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            running = pool.map(load.place, range(KEYS))
            for share in (KEYS // 4, KEYS // 2):
                wait_until(lambda share=share: load.done() >= share, 120, f"{share} orders")
                before = load.errors()
                kill(db)
                wait_until(lambda before=before: load.errors() > before, 15, "a 503")
                db = Secantus(tmp_path / "db", port=db.port, durable=True)
                restarts += 1
            list(running)
        seconds = time.monotonic() - began

        # the sweep finishes what the kills interrupted
        def settled() -> bool:
            orders = mongo.faults.orders
            pending = orders.count_documents(
                {
                    "$or": [
                        {"orderStatus": "Reserving"},
                        {"orderStatus": "Failed", "released": False},
                    ]
                }
            )
            marked = mongo.faults.products.count_documents({"reservedBy.0": {"$exists": True}})
            return pending == 0 and marked == 0

        wait_until(settled, 60, "the repair sweep to settle every placement")

        visible = list(mongo.faults.orders.find({"orderStatus": {"$nin": ["Reserving", "Failed"]}}))
        per_key = Counter(int(o["shippingAddress"]["address"].split()[0]) for o in visible)
        statuses = Counter((status, code) for _, status, code, _ in load.answers)
        unknown = statuses[(503, "order_outcome_unknown")]
        unavailable = sum(n for (s, _), n in statuses.items() if s == 503)
        replays = sum(1 for _, replayed in load.placed.values() if replayed)
        print(
            f"\ndatabase killed under keyed orders: {len(load.answers)} requests for {KEYS} keys "
            f"in {seconds:.1f}s, {restarts} kills and restarts; {unavailable} x 503 "
            f"({unknown} outcome unknown), {statuses[(409, 'idempotency_in_flight')]} x 409 "
            f"in flight, {replays} replays; keys by orders per key: "
            f"{dict(Counter(per_key.values()))}"
        )
        assert unavailable > 0, "the kills hit no request"
        assert sorted(load.placed) == list(range(KEYS)), "some keys were never placed"
        assert dict(per_key) == {key: 1 for key in range(KEYS)}
        failures = [a for a in load.answers if a[1] != 201 and (a[1], a[2]) not in RETRYABLE]
        assert failures == [], failures[:5]
        assert all(has for _, status, _, has in load.answers if status == 503), "no Retry-After"
        for order in visible:
            key = int(order["shippingAddress"]["address"].split()[0])
            assert load.placed[key][0] == str(order["_id"])
        for product in mongo.faults.products.find():
            taken = sum(
                line["qty"]
                for o in visible
                for line in o["orderItems"]
                if line["product"] == product["_id"]
            )
            assert product["quantity"] == STOCK - taken >= 0, product["name"]
    finally:
        mongo.close()
        assert server.stop() == 0, server.output()[-3000:]
        db.stop()
