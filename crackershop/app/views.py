"""What clients see of stored documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from bson import ObjectId

from crackershop.store.interfaces import IStore

PRIVATE_USER_FIELDS = frozenset(
    {
        "password",
        "resetPasswordToken",
        "resetPasswordExpire",
        "tokenVersion",
        "keptToken",
        "__v",
    }
)
# profile fields the app's screens bind to text inputs: always present
USER_TEXT_FIELDS = ("avatar", "mobileNumber", "address", "pincode", "district", "state")


# stock-move records of orders in progress (crackershop.store.orders)
PRIVATE_PRODUCT_FIELDS = frozenset({"__v", "reservedBy", "returnedBy"})
# what the app's product screens read, present even on older documents
PRODUCT_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("images", []),
    ("status", "Active"),
    ("discountPrice", 0),
    ("quantity", 0),
    ("description", ""),
    ("pack", ""),
    ("videoUrl", ""),
    ("isFeatured", False),
    ("isDiwaliSpecial", False),
)


def public_user(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A user without the password hash or any other secret."""
    user = {k: v for k, v in doc.items() if k not in PRIVATE_USER_FIELDS}
    user.setdefault("role", "customer")
    user.setdefault("status", "Active")
    user.setdefault("addresses", [])
    for name in USER_TEXT_FIELDS:
        if user.get(name) is None:
            user[name] = ""
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
    for name, default in PRODUCT_DEFAULTS:
        if product.get(name) is None:
            product[name] = default
    if categories is not None:
        category = categories.get(doc.get("category"))
        product["category"] = (
            {"_id": category["_id"], "name": category.get("name")} if category else None
        )
    return product


# stock-move and repair bookkeeping of orders (crackershop.orders.placing)
PRIVATE_ORDER_FIELDS = frozenset({"__v", "stockReturned", "released"})
# what order screens show of the customer (Order details falls back to the
# profile's address when the order's is missing)
OWNER_FIELDS = ("_id", "name", "email", "mobileNumber", "address", "district", "state", "pincode")
ADDRESS_PARTS = ("address", "landmark", "city", "district", "state", "country")


def order_ref(order: Mapping[str, Any]) -> str:
    """The short reference customers see: the id's last eight characters."""
    return str(order["_id"])[-8:].upper()


def address_line(value: Any) -> Any:
    """An order's shipping address as the app shows it: the text it sent,
    or a structured address written on one line."""
    if not isinstance(value, Mapping):
        return value
    line = ", ".join(str(value[k]) for k in ADDRESS_PARTS if value.get(k))
    code = value.get("pincode") or value.get("postalCode")
    if code:
        line = f"{line} - {code}" if line else str(code)
    phone = value.get("mobileNumber") or value.get("phone")
    if phone:
        line = f"{line}\nPhone: {phone}"
    return line


def public_order(doc: Mapping[str, Any], owners: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """An order with its customer populated (``user`` stays the bare id
    when the account is gone)."""
    order = {k: v for k, v in doc.items() if k not in PRIVATE_ORDER_FIELDS}
    order["shippingAddress"] = address_line(doc.get("shippingAddress"))
    owner = owners.get(doc.get("user"))
    if owner is not None:
        order["user"] = {k: owner[k] for k in OWNER_FIELDS if k in owner}
    return order


class OrderViews:
    """Orders as every order route answers them: one read of their owners."""

    def __init__(self, store: IStore) -> None:
        self.store = store

    async def many(self, docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        ids = list({d["user"] for d in docs if isinstance(d.get("user"), ObjectId)})
        owners = {u["_id"]: u for u in await self.store.users.by_ids(ids)} if ids else {}
        return [public_order(d, owners) for d in docs]

    async def one(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.many([doc]))[0]
