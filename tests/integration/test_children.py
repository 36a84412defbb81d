"""The server's child services under faults, through the real server and its
embedded database: a killed database is restarted once and the shop keeps
serving orders; a server killed with SIGKILL leaves no process behind and
the next server starts on the same files. Every wait is on
``crackershop status --json``, never on log wording."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import httpx
import psutil
import pymongo
import pytest

from tests.support import Server, wait_until

# How long orders keep coming after the database has recovered. The issue's
# operator ran 90 s; the suite runs a bounded 25 s (override for a long run).
AFTER_RECOVERY = float(os.environ.get("CRACKERSHOP_FAULT_SECONDS", "25"))
LOAD_THREADS = 6
ADDRESS = {"address": "3 Temple Road", "district": "Sivakasi", "state": "TN", "pincode": "626123"}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def child(server: Server, name: str) -> dict[str, Any]:
    status = server.status()
    assert status is not None, server.output()[-3000:]
    found: dict[str, Any] = next(c for c in status["children"] if c["name"] == name)
    return found


class OrderLoad:
    """Threads placing one-unit orders and reading the catalogue until stopped;
    every answer is kept with the time its request was sent."""

    def __init__(self, url: str, token: str, product: str) -> None:
        self.url = url
        self.token = token
        self.product = product
        self.answers: list[tuple[float, str, int]] = []
        # a few error answers, to show when something fails
        self.samples: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)
        ]

    def __enter__(self) -> OrderLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self) -> None:
        body = {
            "orderItems": [{"product": self.product, "qty": 1}],
            "shippingAddress": ADDRESS,
            "paymentMethod": "COD",
        }
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            n = 0
            deadline = time.monotonic() + 600  # a hard bound whatever happens
            while not self._stop.is_set() and time.monotonic() < deadline:
                n += 1
                sent = time.monotonic()
                try:
                    if n % 2:
                        r = client.post(
                            "/api/v1/orders",
                            json=body,
                            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                        )
                        what = "order"
                    else:
                        r = client.get("/api/v1/products?limit=5")
                        what = "read"
                    code, text = r.status_code, r.text[:300]
                except httpx.HTTPError as e:
                    what, code, text = "error", 0, repr(e)
                with self._lock:
                    self.answers.append((sent, what, code))
                    if code >= 400 or code == 0:
                        self.samples.setdefault((what, code), text)

    def since(self, moment: float) -> list[tuple[float, str, int]]:
        with self._lock:
            return [a for a in self.answers if a[0] >= moment]


def set_up_shop(server: Server) -> tuple[str, str]:
    """An admin, a category, a product with plenty of stock and a customer: the
    customer's token and the product id."""
    uri = (server.workdir / "data" / "db.uri").read_text().strip()
    with server.client() as c:

        def register(name: str) -> tuple[str, str]:
            email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
            r = c.post(
                "/api/v1/auth/register",
                json={"name": name, "email": email, "password": "password123"},
            )
            assert r.status_code == 201, r.text
            return email, r.json()["token"]

        admin_email, admin = register("admin")
        mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(uri)
        mongo["crackershop"].users.update_one({"email": admin_email}, {"$set": {"role": "admin"}})
        mongo.close()
        a = {"Authorization": f"Bearer {admin}"}
        r = c.post("/api/v1/categories", json={"name": f"Cat {uuid.uuid4().hex[:6]}"}, headers=a)
        assert r.status_code == 201, r.text
        r = c.post(
            "/api/v1/products",
            json={
                "name": "Flower pot",
                "price": 150,
                "quantity": 1_000_000,
                "category": r.json()["data"]["_id"],
            },
            headers=a,
        )
        assert r.status_code == 201, r.text
        product: str = r.json()["data"]["_id"]
        _, customer = register("customer")
    return customer, product


def test_killed_database_is_restarted_once_and_orders_flow_again(tmp_path: Path) -> None:
    """SIGKILL the embedded database of a two-worker production server under order load:
    it is restarted exactly once, and once it serves again no request gets a 503 and
    no second restart happens while orders keep coming."""
    server = Server(
        tmp_path,
        env={"NODE_ENV": "production", "MONGO_MAX_POOL_SIZE": "10"},
        args=["--workers", "2"],
    )
    try:
        token, product = set_up_shop(server)
        before = child(server, "database")
        assert before["state"] == "ready" and before["restarts"] == 0
        with OrderLoad(server.url, token, product) as load:
            wait_until(lambda: len(load.answers) >= 50, 60, "orders to flow")
            killed = time.monotonic()
            os.kill(before["pid"], signal.SIGKILL)
            restarted = wait_until(
                lambda: (lambda d: d if d["restarts"] == 1 and d["state"] == "ready" else None)(
                    child(server, "database")
                ),
                60,
                "the database to be restarted and answer",
            )
            assert restarted["pid"] != before["pid"]
            ready = time.monotonic()

            def serving() -> bool:
                # 20 answers in a row without a 5xx: every pool is back
                recent = load.since(ready)[-20:]
                return len(recent) == 20 and all(0 < code < 500 for _, _, code in recent)

            wait_until(serving, 30, "the workers to serve again")
            recovered = time.monotonic()
            wait_until(
                lambda: time.monotonic() >= recovered + AFTER_RECOVERY,
                AFTER_RECOVERY + 5,
                "the load window",
            )
            during = child(server, "database")
        after = load.since(recovered)
        outage = [a for a in load.answers if killed <= a[0] < recovered]
        codes = Counter(code for _, _, code in after)
        print(
            f"\ndatabase killed: {len(load.answers)} requests; outage {recovered - killed:.1f}s "
            f"(ready after {ready - killed:.1f}s) with {len(outage)} requests, "
            f"{sum(1 for a in outage if a[2] == 503)} x 503; after recovery "
            f"{len(after)} requests in {AFTER_RECOVERY:.0f}s: {dict(codes)}; "
            f"restarts {during['restarts']}"
        )
        assert codes[503] == 0, load.samples
        assert not [c for c in codes if c >= 500 or c == 0], load.samples
        orders = Counter(code for _, what, code in after if what == "order")
        assert set(orders) == {201}, load.samples
        assert during["restarts"] == 1 and during["pid"] == restarted["pid"], during
        assert during["state"] == "ready"
    finally:
        assert server.stop() == 0, server.output()[-3000:]
    wait_until(lambda: not alive(restarted["pid"]), 20, "the database to stop with the server")


@pytest.mark.parametrize("workers", ["0", "2"], ids=["single-process", "two-workers"])
def test_sigkill_leaves_no_process_and_the_next_server_starts(tmp_path: Path, workers: str) -> None:
    """SIGKILL to the server (a single process, or a cluster's master): its workers
    and embedded database all exit by themselves, and a new server starts on the
    same data directory."""
    server = Server(tmp_path, args=["--workers", workers])
    pids = server.pids()
    expected = {"server", "database"} | ({"worker-1", "worker-2"} if workers == "2" else set())
    assert set(pids) == expected, pids
    leftover: list[int] = []
    try:
        server.signal(signal.SIGKILL)
        server.stop()
        wait_until(
            lambda: not [p for p in pids.values() if alive(p)],
            30,
            "every process of the killed server to exit",
        )
    finally:
        leftover = [p for p in pids.values() if alive(p)]
        for pid in leftover:
            psutil.Process(pid).kill()
    assert leftover == []
    again = Server(tmp_path, args=["--workers", workers])
    new: Optional[dict[str, int]] = None
    try:
        new = again.pids()
        assert set(new) == expected
        assert httpx.get(again.url + "/ready").status_code == 200
    finally:
        assert again.stop() == 0, again.output()[-3000:]
    assert new is not None
    wait_until(lambda: not [p for p in new.values() if alive(p)], 30, "a clean stop")
