"""Order totals: exact to the paisa, the sum of their parts, and built only
from the database's prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bson import ObjectId
from hypothesis import given
from hypothesis import strategies as st

from crackershop.app.pricing import Line, money, price_order, unit_price

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
    """total = items + tax + shipping + fees, exactly; items use the stored (discount) prices only."""
    for product, _ in lines:
        product["clientPrice"] = client_price  # whatever a client might claim is ignored
    totals = price_order([Line(p, q) for p, q in lines], settings)
    expected_items = sum((unit_price(p) * q for p, q in lines), Decimal(0))
    assert totals.itemsPrice == expected_items
    assert totals.totalPrice == (
        totals.itemsPrice + totals.taxPrice + totals.shippingPrice + totals.otherFees
    )
    for part in totals[1:]:
        assert part == part.quantize(Decimal("0.01")) and part >= 0
    for item, (product, qty) in zip(totals.items, lines):
        assert Decimal(str(item["price"])) == unit_price(product) and item["qty"] == qty
        assert unit_price(product) in (money(product["price"]), money(product.get("discountPrice")))
    fields = totals.as_fields()
    assert Decimal(str(fields["totalPrice"])) == totals.totalPrice
    free = totals.itemsPrice >= money(settings["shipping"]["freeShippingAbove"])
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
