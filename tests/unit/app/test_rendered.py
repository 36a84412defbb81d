"""Customers' product lists are encoded once per catalogue fetch, and never
outlive what the catalogue itself would answer."""

from __future__ import annotations

from typing import Any

from crackershop.app.rendered import Rendered
from crackershop.app.routing import paginated
from tests.unit.app.harness import Harness


def test_an_answer_is_kept_only_for_the_very_objects_it_was_made_from() -> None:
    """Identical sources answer the kept bytes; equal but new objects do not."""
    rendered = Rendered()
    page, categories = [{"name": "Sparkler"}], [{"name": "Sparklers"}]
    first = rendered.put("q", (page, categories), paginated(page, 1, 1, 10))
    kept = rendered.get("q", (page, categories))
    assert kept is not None and kept.body is first.body
    assert kept.content_type == "application/json; charset=utf-8"
    assert rendered.get("q", (list(page), categories)) is None
    assert rendered.get("q", (page, list(categories))) is None
    assert rendered.get("other", (page, categories)) is None


def test_at_most_its_size_is_kept_least_recently_used_first() -> None:
    """The oldest unused answer goes when the bound is passed."""
    rendered = Rendered(max_entries=2)
    sources = {key: ([key], []) for key in "abc"}
    for key in "ab":
        rendered.put(key, sources[key], paginated([], 0, 1, 10))
    assert rendered.get("a", sources["a"]) is not None  # a is now the most recent
    rendered.put("c", sources["c"], paginated([], 0, 1, 10))
    assert len(rendered) == 2
    assert rendered.get("b", sources["b"]) is None
    assert rendered.get("a", sources["a"]) is not None


def _shop() -> tuple[Harness, str, str, str, str]:
    """A shop whose catalogue keeps answers 5 s: admin and customer tokens,
    and the ids of one category and one product in it (price 50)."""
    h = Harness(catalogue_ttl=5.0)
    admin, customer = h.admin(), h.register("cust@example.com")
    _, category, _ = h.request("POST", "/api/v1/categories", {"name": "Sparklers"}, token=admin)
    cid = category["data"]["_id"]
    _, product, _ = h.request(
        "POST",
        "/api/v1/products",
        {"name": "Sparkler", "price": 50, "quantity": 5, "category": cid},
        token=admin,
    )
    return h, admin, customer, cid, product["data"]["_id"]


def _names(h: Harness, token: str) -> list[Any]:
    code, body, _ = h.request("GET", "/api/v1/products?limit=10", token=token)
    assert code == 200
    return [(p["name"], p["price"], p["category"]["name"]) for p in body["data"]]


def test_a_change_reaches_the_list_exactly_when_the_catalogue_fetches_again() -> None:
    """An edited product or category shows in customers' lists once the
    catalogue's bound has passed, not before, and admins see it at once."""
    h, admin, customer, cid, pid = _shop()
    assert _names(h, customer) == [("Sparkler", 50, "Sparklers")]
    assert _names(h, customer) == [("Sparkler", 50, "Sparklers")]
    h.request("PUT", f"/api/v1/products/{pid}", {"price": 45}, token=admin)
    h.request("PUT", f"/api/v1/categories/{cid}", {"name": "Fountains"}, token=admin)
    assert _names(h, admin) == [("Sparkler", 45, "Fountains")]
    h.clock.advance(4.9)
    assert _names(h, customer) == [("Sparkler", 50, "Sparklers")]
    h.clock.advance(0.1)
    assert _names(h, customer) == [("Sparkler", 45, "Fountains")]
    assert _names(h, customer) == [("Sparkler", 45, "Fountains")]


def test_a_product_page_changes_exactly_when_the_catalogue_fetches_again() -> None:
    """A customer's product page keeps the catalogue's bound; an admin reads the store."""
    h, admin, customer, _, pid = _shop()
    path = f"/api/v1/products/{pid}"

    def price(token: str) -> Any:
        code, body, _ = h.request("GET", path, token=token)
        assert code == 200
        return body["data"]["price"]

    assert (price(customer), price(customer)) == (50, 50)
    h.request("PUT", path, {"price": 45}, token=admin)
    assert price(admin) == 45
    h.clock.advance(4.9)
    assert price(customer) == 50
    h.clock.advance(0.1)
    assert (price(customer), price(customer)) == (45, 45)
