"""Order totals, computed exactly in Decimal rupees rounded to the paisa.

Everything comes from the product documents and the settings document;
nothing from the client but product ids and quantities. Prices are stored as
numbers (as the old backend stored them), so each is read through its
shortest decimal form (``str(19.99) == "19.99"``) and never summed as a float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple

PAISA = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Any) -> Decimal:
    """A stored amount as Decimal rupees with two places (missing or bad -> 0)."""
    if isinstance(value, bool) or value is None:
        return ZERO
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ZERO
    if not amount.is_finite() or amount < 0:
        return ZERO
    return amount.quantize(PAISA, rounding=ROUND_HALF_UP)


def unit_price(product: Mapping[str, Any]) -> Decimal:
    """The discount price when one is set below the price, else the price."""
    price = money(product.get("price"))
    discount = money(product.get("discountPrice"))
    if ZERO < discount < price:
        return discount
    return price


class Line(NamedTuple):
    product: Mapping[str, Any]
    qty: int


class Totals(NamedTuple):
    items: list[dict[str, Any]]
    itemsPrice: Decimal
    taxPrice: Decimal
    shippingPrice: Decimal
    otherFees: Decimal
    discountPrice: Decimal
    totalPrice: Decimal

    def as_fields(self) -> dict[str, Any]:
        """The order's money fields as JSON/BSON numbers (exact to the paisa)."""
        return {
            name: float(getattr(self, name))
            for name in (
                "itemsPrice",
                "taxPrice",
                "shippingPrice",
                "otherFees",
                "discountPrice",
                "totalPrice",
            )
        }


def price_order(lines: Sequence[Line], settings: Mapping[str, Any]) -> Totals:
    """The order's lines and totals, in the shape the app's order screens
    read them.

    Each line carries the product's list price; ``itemsPrice`` is the list
    total and ``discountPrice`` the whole saving of the products' discount
    prices, so ``totalPrice = itemsPrice - discountPrice + shippingPrice +
    otherFees + taxPrice``. Free shipping, tax and the minimum order are
    judged on what the items cost after their discounts.
    """
    shipping = settings.get("shipping") or {}
    fees = settings.get("fees") or {}
    items: list[dict[str, Any]] = []
    list_total = ZERO
    saved = ZERO
    for product, qty in lines:
        listed = money(product.get("price"))
        list_total += listed * qty
        saved += (listed - unit_price(product)) * qty
        images = product.get("images") or []
        items.append(
            {
                "name": product.get("name", ""),
                "qty": qty,
                "image": product.get("image") or (images[0] if images else ""),
                "price": float(listed),
                "product": product["_id"],
            }
        )
    subtotal = list_total - saved
    rate = money(fees.get("taxRate"))
    tax = (subtotal * rate / 100).quantize(PAISA, rounding=ROUND_HALF_UP)
    free_above = money(shipping.get("freeShippingAbove"))
    shipping_price = ZERO if subtotal >= free_above else money(shipping.get("baseFee"))
    other = money(fees.get("packagingFee")) + money(fees.get("handlingFee"))
    total = subtotal + tax + shipping_price + other
    return Totals(items, list_total, tax, shipping_price, other, saved, total)


def subtotal(totals: Totals) -> Decimal:
    """What the items cost after their discounts."""
    return totals.itemsPrice - totals.discountPrice


def minimum_order(settings: Mapping[str, Any]) -> Decimal:
    return money((settings.get("orderSettings") or {}).get("minimumOrderAmount"))
