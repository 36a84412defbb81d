"""Products and categories over the in-memory store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.app.harness import Harness


@pytest.fixture
def shop() -> dict[str, Any]:
    h = Harness()
    admin = h.admin()
    customer = h.register("cust@example.com")
    _, sparklers, _ = h.request("POST", "/api/v1/categories", {"name": "Sparklers"}, token=admin)
    _, rockets, _ = h.request("POST", "/api/v1/categories", {"name": "Rockets"}, token=admin)
    products: list[dict[str, Any]] = []
    for i, (name, price, cat, featured) in enumerate(
        [
            ("Electric Sparkler", 50, sparklers, True),
            ("Colour Sparkler (10 cm)", 80.5, sparklers, False),
            ("Baby Rocket", 120, rockets, True),
            ("Whistling Rocket", 300, rockets, False),
        ]
    ):
        h.clock.advance(1)
        code, body, _ = h.request(
            "POST",
            "/api/v1/products",
            {
                "name": name,
                "price": price,
                "category": cat["data"]["_id"],
                "quantity": 10 + i,
                "isFeatured": featured,
                "description": f"{name} for Diwali",
            },
            token=admin,
        )
        assert code == 201, body
        products.append(body["data"])
    return {
        "h": h,
        "admin": admin,
        "customer": customer,
        "products": products,
        "sparklers": sparklers["data"],
        "rockets": rockets["data"],
    }


def names(body: dict[str, Any]) -> list[str]:
    return [p["name"] for p in body["data"]]


def test_list_is_paginated_newest_first_with_category_populated(shop: dict[str, Any]) -> None:
    """The default list is newest first, paginated, with {_id, name} categories."""
    h = shop["h"]
    code, body, _ = h.request("GET", "/api/v1/products?limit=3&page=1")
    assert code == 200
    assert (body["count"], body["total"], body["pages"], body["currentPage"]) == (3, 4, 2, 1)
    assert names(body) == ["Whistling Rocket", "Baby Rocket", "Colour Sparkler (10 cm)"]
    assert body["data"][0]["category"] == {"_id": shop["rockets"]["_id"], "name": "Rockets"}
    _, page2, _ = h.request("GET", "/api/v1/products?limit=3&page=2")
    assert names(page2) == ["Electric Sparkler"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "sortBy=price",
            ["Electric Sparkler", "Colour Sparkler (10 cm)", "Baby Rocket", "Whistling Rocket"],
        ),
        ("sortBy=-price&limit=1", ["Whistling Rocket"]),
        ("sortBy=name&limit=2", ["Baby Rocket", "Colour Sparkler (10 cm)"]),
        ("featured=true&sortBy=name", ["Baby Rocket", "Electric Sparkler"]),
        ("minPrice=80&maxPrice=150&sortBy=price", ["Colour Sparkler (10 cm)", "Baby Rocket"]),
        ("search=ROCKET&sortBy=name", ["Baby Rocket", "Whistling Rocket"]),
        ("search=(10&sortBy=name", ["Colour Sparkler (10 cm)"]),
        ("search=.*", []),
    ],
)
def test_filters_and_sorts(shop: dict[str, Any], query: str, expected: list[str]) -> None:
    """Each filter and sort option narrows and orders the list; search is literal."""
    code, body, _ = shop["h"].request("GET", f"/api/v1/products?{query}")
    assert code == 200 and names(body) == expected


def test_category_filter(shop: dict[str, Any]) -> None:
    """category=<id> keeps that category's products."""
    h = shop["h"]
    _, body, _ = h.request("GET", f"/api/v1/products?category={shop['rockets']['_id']}")
    assert sorted(names(body)) == ["Baby Rocket", "Whistling Rocket"]
    code, body, _ = h.request("GET", "/api/v1/products?category=nope")
    assert code == 400 and "category" in body["details"]


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "limit=101",
        "limit=x",
        "sortBy=$where",
        "minPrice=-1",
        "featured=yes",
        "page=1&page=2",
        "maxPrice=nan",
    ],
)
def test_bad_queries_are_400(shop: dict[str, Any], query: str) -> None:
    """Invalid paging, sorting, filters and repeated arguments are 400 with details."""
    code, body, _ = shop["h"].request("GET", f"/api/v1/products?{query}")
    assert code == 400 and body["details"], body


def test_search_route(shop: dict[str, Any]) -> None:
    """/search/query matches name or description literally, case-insensitively."""
    h = shop["h"]
    code, body, _ = h.request("GET", "/api/v1/products/search/query?q=for%20diwali")
    assert code == 200 and body["total"] == 4
    code, body, _ = h.request("GET", "/api/v1/products/search/query?q=")
    assert code == 400


def test_inactive_products_are_hidden_from_customers(shop: dict[str, Any]) -> None:
    """Customers never see Inactive products; admins do."""
    h, admin, customer = shop["h"], shop["admin"], shop["customer"]
    product = shop["products"][0]
    code, _, _ = h.request(
        "PUT", f"/api/v1/products/{product['_id']}", {"status": "Inactive"}, token=admin
    )
    assert code == 200
    assert h.request("GET", f"/api/v1/products/{product['_id']}")[0] == 404
    assert h.request("GET", f"/api/v1/products/{product['_id']}", token=customer)[0] == 404
    assert h.request("GET", f"/api/v1/products/{product['_id']}", token=admin)[0] == 200
    assert h.request("GET", "/api/v1/products")[1]["total"] == 3
    assert h.request("GET", "/api/v1/products", token=admin)[1]["total"] == 4


def test_product_validation(shop: dict[str, Any]) -> None:
    """Wrong types, unknown fields, bad prices and unknown categories are 400s."""
    h, admin = shop["h"], shop["admin"]
    cat = shop["sparklers"]["_id"]
    cases = [
        ({"name": "X", "price": "10", "category": cat}, "price"),
        ({"name": "X", "price": 10, "category": cat, "colour": "red"}, "colour"),
        ({"name": "X", "price": 10.005, "category": cat}, "price"),
        ({"name": "X", "price": 10, "category": "0" * 24}, "category"),
        ({"name": "X", "price": 10, "discountPrice": 11, "category": cat}, "discountPrice"),
        ({"name": "X", "price": 10, "category": cat, "quantity": -1}, "quantity"),
        ({"price": 10, "category": cat}, "name"),
    ]
    before = len(h.store.products.docs)
    for body, field in cases:
        code, reply, _ = h.request("POST", "/api/v1/products", body, token=admin)
        assert code == 400 and field in reply["details"], (body, reply)
    assert len(h.store.products.docs) == before


def test_admin_routes_need_an_admin(shop: dict[str, Any]) -> None:
    """Customers get 403 and anonymous callers 401 on admin routes."""
    h = shop["h"]
    body = {"name": "Bombs"}
    assert h.request("POST", "/api/v1/categories", body, token=shop["customer"])[0] == 403
    assert h.request("POST", "/api/v1/categories", body)[0] == 401


def test_update_and_delete_product(shop: dict[str, Any]) -> None:
    """Admins update and delete; unknown and malformed ids are 404."""
    h, admin = shop["h"], shop["admin"]
    pid = shop["products"][1]["_id"]
    code, body, _ = h.request(
        "PUT", f"/api/v1/products/{pid}", {"price": 90, "images": ["/u/a.png"]}, token=admin
    )
    assert code == 200 and body["data"]["price"] == 90 and body["data"]["image"] == "/u/a.png"
    assert h.request("DELETE", f"/api/v1/products/{pid}", token=admin)[0] == 200
    assert h.request("DELETE", f"/api/v1/products/{pid}", token=admin)[0] == 404
    assert h.request("PUT", "/api/v1/products/123", {"price": 1}, token=admin)[0] == 404


def test_categories(shop: dict[str, Any]) -> None:
    """Names are unique; a category with products cannot be deleted."""
    h, admin = shop["h"], shop["admin"]
    code, body, _ = h.request("POST", "/api/v1/categories", {"name": "Rockets"}, token=admin)
    assert code == 409
    code, body, _ = h.request("DELETE", f"/api/v1/categories/{shop['rockets']['_id']}", token=admin)
    assert code == 409
    code, empty, _ = h.request("POST", "/api/v1/categories", {"name": "Empty"}, token=admin)
    assert h.request("DELETE", f"/api/v1/categories/{empty['data']['_id']}", token=admin)[0] == 200
    code, body, _ = h.request("GET", "/api/v1/categories")
    assert [c["name"] for c in body["data"]] == ["Rockets", "Sparklers"]
