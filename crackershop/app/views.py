"""What clients see of stored documents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

PRIVATE_USER_FIELDS = frozenset(
    {"password", "resetPasswordToken", "resetPasswordExpire", "tokenVersion", "__v"}
)


# stock-move records of orders in progress (crackershop.store.orders)
PRIVATE_PRODUCT_FIELDS = frozenset({"__v", "reservedBy", "returnedBy"})


def public_user(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A user without the password hash or any other secret."""
    user = {k: v for k, v in doc.items() if k not in PRIVATE_USER_FIELDS}
    user.setdefault("role", "customer")
    user.setdefault("status", "Active")
    user.setdefault("addresses", [])
    return user


def public_category(doc: Mapping[str, Any]) -> dict[str, Any]:
    category = {k: v for k, v in doc.items() if k != "__v"}
    category.setdefault("status", "Active")
    return category


def public_product(
    doc: Mapping[str, Any], categories: Optional[Mapping[Any, Mapping[str, Any]]] = None
) -> dict[str, Any]:
    """A product, its category populated as ``{_id, name}`` when known."""
    product = {k: v for k, v in doc.items() if k not in PRIVATE_PRODUCT_FIELDS}
    product.setdefault("images", [])
    product.setdefault("status", "Active")
    if categories is not None:
        category = categories.get(doc.get("category"))
        product["category"] = (
            {"_id": category["_id"], "name": category.get("name")} if category else None
        )
    return product
