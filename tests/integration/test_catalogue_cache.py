"""Two crackershop servers on one database, each caching the catalogue: a
change made through one (an admin's edit, a sale's stock move) is seen
through the other within the staleness bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Secantus, Server, bearer, make_admin, register, unique, wait_until

BOUND = 1.0
# the bound, plus room for one poll and a request on a busy machine
DEADLINE = BOUND + 1.0
ADDRESS = {"address": "3 Temple Road", "district": "Sivakasi", "state": "TN", "pincode": "626123"}


class Pair:
    def __init__(self, workdir: Path) -> None:
        self.db = Secantus(workdir / "db")
        env = {"MONGO_URI": self.db.uri, "CATALOGUE_CACHE_TTL": f"{BOUND}s"}
        self.a = Server(workdir / "a", env=env)
        self.b = Server(workdir / "b", env=env)
        self.admin = make_admin(self.a, "cache-admin@shop.test", "admin-password-1")
        self.http_a = self.a.client()
        self.http_b = self.b.client()

    def close(self) -> None:
        self.http_a.close()
        self.http_b.close()
        codes = (self.a.stop(), self.b.stop())
        self.db.stop()
        assert codes == (0, 0), (self.a.output()[-2000:], self.b.output()[-2000:])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    p = Pair(tmp_path_factory.mktemp("catalogue"))
    yield p
    p.close()


def product_on_b(pair: Pair, product_id: str) -> Any:
    r = pair.http_b.get(f"/api/v1/products/{product_id}")
    return r.json()["data"] if r.status_code == 200 else None


def make_product(pair: Pair, quantity: int = 10) -> dict[str, Any]:
    cat = pair.http_a.post(
        "/api/v1/categories", json={"name": unique("Cat")}, headers=bearer(pair.admin)
    )
    assert cat.status_code == 201, cat.text
    r = pair.http_a.post(
        "/api/v1/products",
        json={
            "name": unique("Flowerpot"),
            "price": 500,
            "quantity": quantity,
            "category": cat.json()["data"]["_id"],
        },
        headers=bearer(pair.admin),
    )
    assert r.status_code == 201, r.text
    product: dict[str, Any] = r.json()["data"]
    return product


def test_an_admin_edit_on_one_server_is_seen_on_the_other_within_the_bound(pair: Pair) -> None:
    """A price change through A shows through B's cached product and list within the bound."""
    product = make_product(pair)
    pid = product["_id"]
    wait_until(lambda: product_on_b(pair, pid), DEADLINE, "the new product on B")
    assert product_on_b(pair, pid)["price"] == 500  # B has it cached now
    r = pair.http_a.put(f"/api/v1/products/{pid}", json={"price": 450}, headers=bearer(pair.admin))
    assert r.status_code == 200, r.text

    def listed_price() -> Any:
        page = pair.http_b.get("/api/v1/products", params={"search": product["name"]}).json()
        return [p["price"] for p in page["data"]] == [450]

    wait_until(lambda: product_on_b(pair, pid)["price"] == 450, DEADLINE, "the price on B")
    wait_until(listed_price, DEADLINE, "the listed price on B")


def test_a_sale_through_one_server_changes_stock_seen_on_the_other(pair: Pair) -> None:
    """An order placed through A lowers the quantity B shows within the bound."""
    product = make_product(pair, quantity=10)
    pid = product["_id"]
    assert wait_until(lambda: product_on_b(pair, pid), DEADLINE)["quantity"] == 10
    token = register(pair.http_a, f"{unique('buyer')}@shop.test")["token"]
    order = {"orderItems": [{"product": pid, "qty": 3}], "shippingAddress": ADDRESS}
    r = pair.http_a.post(
        "/api/v1/orders", json={**order, "paymentMethod": "COD"}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text
    wait_until(lambda: product_on_b(pair, pid)["quantity"] == 7, DEADLINE, "stock on B")


def test_orders_check_stock_in_the_database_not_the_cache(pair: Pair) -> None:
    """An order through B for more than the database holds is refused, whatever B has cached."""
    product = make_product(pair, quantity=5)
    pid = product["_id"]
    assert wait_until(lambda: product_on_b(pair, pid), DEADLINE)["quantity"] == 5
    buyer = register(pair.http_a, f"{unique('buyer')}@shop.test")["token"]
    body = {"orderItems": [{"product": pid, "qty": 3}], "shippingAddress": ADDRESS}
    sold = pair.http_a.post(
        "/api/v1/orders", json={**body, "paymentMethod": "COD"}, headers=bearer(buyer)
    )
    assert sold.status_code == 201, sold.text
    body["orderItems"] = [{"product": pid, "qty": 5}]
    late = pair.http_b.post(
        "/api/v1/orders", json={**body, "paymentMethod": "COD"}, headers=bearer(buyer)
    )
    assert late.status_code == 409, late.text


def test_a_product_made_inactive_disappears_for_customers_within_the_bound(pair: Pair) -> None:
    """Deactivated through A, B answers customers 404 within the bound; admins still see it."""
    product = make_product(pair)
    pid = product["_id"]
    wait_until(lambda: product_on_b(pair, pid), DEADLINE, "the product on B")
    r = pair.http_a.put(
        f"/api/v1/products/{pid}", json={"status": "Inactive"}, headers=bearer(pair.admin)
    )
    assert r.status_code == 200, r.text
    wait_until(lambda: product_on_b(pair, pid) is None, DEADLINE, "the product gone on B")
    seen = pair.http_b.get(f"/api/v1/products/{pid}", headers=bearer(pair.admin))
    assert seen.status_code == 200 and seen.json()["data"]["status"] == "Inactive"


def test_a_category_rename_reaches_the_other_server_within_the_bound(pair: Pair) -> None:
    """A category renamed through A is named so in B's product view within the bound."""
    product = make_product(pair)
    pid, cat = product["_id"], product["category"]["_id"]
    wait_until(lambda: product_on_b(pair, pid), DEADLINE, "the product on B")
    name = unique("Renamed")
    r = pair.http_a.put(
        f"/api/v1/categories/{cat}", json={"name": name}, headers=bearer(pair.admin)
    )
    assert r.status_code == 200, r.text
    wait_until(
        lambda: product_on_b(pair, pid)["category"]["name"] == name, DEADLINE, "the new name"
    )
