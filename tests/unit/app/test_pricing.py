"""Order totals: exact to the paisa, the sum of their parts, and built only
from the database's prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crackershop.app.pricing import Line, money, price_order, subtotal, unit_price
from tests.unit.app.harness import Harness

paise = st.integers(min_value=0, max_value=10_000_000).map(lambda p: p / 100)
positive_paise = st.integers(min_value=1, max_value=10_000_000).map(lambda p: p / 100)


@st.composite
def products(draw: Any) -> dict[str, Any]:
    price = draw(positive_paise)
    product: dict[str, Any] = {"_id": ObjectId(), "name": "P", "price": price}
    if draw(st.booleans()):
        product["discountPrice"] = draw(paise)
    return product


settings_strategy = st.fixed_dictionaries(
    {
        "shipping": st.fixed_dictionaries({"baseFee": paise, "freeShippingAbove": paise}),
        "fees": st.fixed_dictionaries(
            {
                "packagingFee": paise,
                "handlingFee": paise,
                "taxRate": st.integers(0, 10_000).map(lambda r: r / 100),
            }
        ),
    }
)


@given(
    st.lists(st.tuples(products(), st.integers(1, 10_000)), min_size=1, max_size=20),
    settings_strategy,
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_total_is_the_sum_of_its_parts(
    lines: list[tuple[dict[str, Any], int]], settings: dict[str, Any], client_price: float
) -> None:
    """total = items - discount + tax + shipping + fees exactly; lines carry
    the stored list prices, the discount is what the stored discount prices
    save, and nothing a client claims is read."""
    for product, _ in lines:
        product["clientPrice"] = client_price  # whatever a client might claim is ignored
    totals = price_order([Line(p, q) for p, q in lines], settings)
    assert totals.itemsPrice == sum((money(p["price"]) * q for p, q in lines), Decimal(0))
    paid = sum((unit_price(p) * q for p, q in lines), Decimal(0))
    assert subtotal(totals) == paid == totals.itemsPrice - totals.discountPrice
    assert totals.totalPrice == (
        totals.itemsPrice
        - totals.discountPrice
        + totals.taxPrice
        + totals.shippingPrice
        + totals.otherFees
    )
    for part in totals[1:]:
        assert part == part.quantize(Decimal("0.01")) and part >= 0
    for item, (product, qty) in zip(totals.items, lines):
        assert Decimal(str(item["price"])) == money(product["price"]) and item["qty"] == qty
    fields = totals.as_fields()
    assert Decimal(str(fields["totalPrice"])) == totals.totalPrice
    free = paid >= money(settings["shipping"]["freeShippingAbove"])
    assert totals.shippingPrice == (0 if free else money(settings["shipping"]["baseFee"]))


def test_money_is_exact_where_floats_drift() -> None:
    """0.1 + 0.2 style drift never reaches a total."""
    product = {"_id": ObjectId(), "price": 0.1}
    other = {"_id": ObjectId(), "price": 0.2}
    totals = price_order([Line(product, 1), Line(other, 1)], {"shipping": {"baseFee": 0}})
    assert totals.itemsPrice == Decimal("0.30") and totals.as_fields()["itemsPrice"] == 0.3
    assert 0.1 + 0.2 != 0.3


def test_discount_price_rules() -> None:
    """A discount applies only when set above 0 and below the price."""
    assert unit_price({"price": 100, "discountPrice": 80}) == Decimal("80.00")
    assert unit_price({"price": 100, "discountPrice": 0}) == Decimal("100.00")
    assert unit_price({"price": 100, "discountPrice": 120}) == Decimal("100.00")
    assert unit_price({"price": 100}) == Decimal("100.00")
    assert money(None) == 0 and money("junk") == 0 and money(-5) == 0 and money(True) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(products(), st.integers(1, 50)), min_size=1, max_size=5),
    settings_strategy,
    st.one_of(st.none(), st.floats(0, 1e6)),
)
def test_placed_orders_add_up_and_ignore_client_prices(
    lines: list[tuple[dict[str, Any], int]], shop_settings: dict[str, Any], client_price: Any
) -> None:
    """Through the API: a placed order's total is the sum of its parts from
    stored prices, whatever price the body's lines claim."""
    h = Harness()
    admin = h.admin()
    token = h.register("buyer@example.com")
    shop_settings = {**shop_settings, "orderSettings": {"minimumOrderAmount": 0}}
    assert h.request("PUT", "/api/v1/settings", shop_settings, token=admin)[0] == 200
    items = []
    for product, qty in lines:
        stored = {**product, "quantity": qty, "status": "Active"}
        h.store.products.docs[stored["_id"]] = stored
        line: dict[str, Any] = {"product": str(stored["_id"]), "qty": qty}
        if client_price is not None:
            line["price"] = client_price
        items.append(line)
    body = {"orderItems": items, "shippingAddress": {"address": "x"}, "paymentMethod": "COD"}
    code, reply, _ = h.request("POST", "/api/v1/orders", body, token=token)
    assert code == 201, reply
    order = reply["data"]
    parts = ("itemsPrice", "taxPrice", "shippingPrice", "otherFees")
    added = sum(Decimal(str(order[p])) for p in parts) - Decimal(str(order["discountPrice"]))
    assert Decimal(str(order["totalPrice"])) == added
    expected = sum((money(p["price"]) * q for p, q in lines), Decimal(0))
    assert Decimal(str(order["itemsPrice"])) == expected
    assert all(h.store.products.docs[p["_id"]]["quantity"] == 0 for p, _ in lines)
