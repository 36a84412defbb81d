"""The store seams. Documents are plain dicts shaped as MongoDB stores them
(``_id`` an ObjectId, dates as aware UTC datetimes)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional

from bson import ObjectId
from zope.interface import Attribute, Interface

Document = dict[str, Any]  # a MongoDB document, as txmongo returns it


class Page(NamedTuple):
    items: list[Document]
    total: int


class ProductQuery(NamedTuple):
    page: int = 1
    limit: int = 10
    category: Optional[ObjectId] = None
    search: Optional[str] = None
    featured: bool = False
    diwali_special: bool = False
    min_price: Optional[float] = None
    max_price: Optional[float] = None
    sort: str = "-createdAt"
    include_inactive: bool = False


SORTS = ("-createdAt", "createdAt", "price", "-price", "name", "-name")


class IUsers(Interface):
    async def create(doc: Mapping[str, Any]) -> Document:
        """Insert a user; DuplicateKey('email') when the email is taken."""

    async def get(user_id: ObjectId) -> Optional[Document]:
        """The user, or None."""

    async def by_email(email: str) -> Optional[Document]:
        """The user with this (lower-cased) email, or None."""

    async def by_ids(ids: Sequence[ObjectId]) -> builtins.list[Document]:
        """The users among these ids."""

    async def by_reset_token(token_hash: str, now: Any) -> Optional[Document]:
        """The user whose unexpired reset token has this hash, or None."""

    async def update(
        user_id: ObjectId, changes: Mapping[str, Any], inc: Optional[Mapping[str, int]] = None
    ) -> Optional[Document]:
        """Set fields (and increment counters); the updated user, or None."""

    async def delete(user_id: ObjectId) -> bool:
        """Remove the user; whether one was removed."""

    async def list(page: int, limit: int) -> Page:
        """Users newest first."""

    async def add_address(
        user_id: ObjectId, entry: Mapping[str, Any], limit: int
    ) -> Optional[Document]:
        """Append a saved address in one atomic write; it becomes the default
        when ``entry["isDefault"]`` or when no address is the default yet (the
        others stop being it). The updated user; None if the user is missing
        or already has ``limit`` addresses."""

    async def set_default_address(user_id: ObjectId, address_id: ObjectId) -> Optional[Document]:
        """Make one saved address the only default, atomically; the updated
        user, or None if the user has no such address."""

    async def remove_address(user_id: ObjectId, address_id: ObjectId) -> Optional[Document]:
        """Remove a saved address atomically (the first one left becomes the
        default if it was); the updated user, or None if there was no such
        address."""

    async def ids_with_role(
        role: str, after: Optional[ObjectId], limit: int
    ) -> builtins.list[ObjectId]:
        """Up to ``limit`` ids of active users with the role, in id order after ``after``."""


class ICategories(Interface):
    async def create(doc: Mapping[str, Any]) -> Document:
        """Insert; DuplicateKey('name') when the name is taken."""

    async def get(category_id: ObjectId) -> Optional[Document]:
        """The category, or None."""

    async def by_ids(ids: Sequence[ObjectId]) -> builtins.list[Document]:
        """The categories among these ids."""

    async def list(include_inactive: bool) -> builtins.list[Document]:
        """Categories by name."""

    async def update(category_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        """Set fields; the updated category, or None. DuplicateKey('name')."""

    async def delete(category_id: ObjectId) -> bool:
        """Remove; whether one was removed."""


class IProducts(Interface):
    async def create(doc: Mapping[str, Any]) -> Document:
        """Insert; DuplicateKey('sku') when the SKU is taken."""

    async def get(product_id: ObjectId) -> Optional[Document]:
        """The product, or None."""

    async def update(product_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        """Set fields; the updated product, or None."""

    async def delete(product_id: ObjectId) -> bool:
        """Remove; whether one was removed."""

    async def list(query: ProductQuery) -> Page:
        """One page of the products matching the query."""

    async def count_in_category(category_id: ObjectId) -> int:
        """How many products belong to the category."""


class IBanners(Interface):
    async def create(doc: Mapping[str, Any]) -> Document:
        """Insert a banner."""

    async def get(banner_id: ObjectId) -> Optional[Document]:
        """The banner, or None."""

    async def update(banner_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        """Set fields; the updated banner, or None."""

    async def delete(banner_id: ObjectId) -> bool:
        """Remove; whether one was removed."""

    async def list(include_inactive: bool) -> builtins.list[Document]:
        """Banners newest first."""


class INotifications(Interface):
    async def create_many(docs: Sequence[Mapping[str, Any]]) -> int:
        """Insert notifications; how many."""

    async def list_for(user: ObjectId, limit: int) -> tuple[builtins.list[Document], int]:
        """The user's newest notifications, and how many are unread."""

    async def mark_read(user: ObjectId, notification_id: ObjectId) -> Optional[Document]:
        """Mark one of the user's notifications read; None if not theirs."""

    async def mark_all_read(user: ObjectId) -> int:
        """Mark all the user's notifications read; how many changed."""

    async def delete(user: ObjectId, notification_id: ObjectId) -> bool:
        """Delete one of the user's notifications; False if not theirs."""


class IChit(Interface):
    async def create_scheme(doc: Mapping[str, Any]) -> Document:
        """Insert a savings scheme."""

    async def get_scheme(scheme_id: ObjectId) -> Optional[Document]:
        """The scheme, or None."""

    async def list_schemes() -> builtins.list[Document]:
        """Schemes newest first."""

    async def update_scheme(scheme_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        """Set fields; the updated scheme, or None."""

    async def delete_scheme(scheme_id: ObjectId) -> bool:
        """Remove; whether one was removed."""

    async def add_member(doc: Mapping[str, Any]) -> Document:
        """Record a membership; DuplicateKey('member') if the user already asked."""

    async def member(user: ObjectId, scheme: ObjectId) -> Optional[Document]:
        """The user's membership of the scheme, or None."""

    async def set_member_status(
        user: ObjectId, scheme: ObjectId, allowed: Sequence[str], status: str
    ) -> Optional[Document]:
        """Move a membership from one of ``allowed`` to ``status``; None if not there."""

    async def members_of(scheme: ObjectId) -> builtins.list[Document]:
        """The scheme's memberships, oldest first."""

    async def memberships_of(user: ObjectId) -> builtins.list[Document]:
        """The user's memberships, oldest first."""

    async def add_payment(doc: Mapping[str, Any]) -> Document:
        """Record a payment; DuplicateKey('monthIndex') if that month is paid."""

    async def payments(
        scheme: ObjectId, user: Optional[ObjectId] = None
    ) -> builtins.list[Document]:
        """Payments of the scheme (of one user), by month."""


class ISettings(Interface):
    async def get() -> Document:
        """The shop's settings document, created with its defaults when
        missing; missing parts and fields come back with their defaults."""

    async def update(changes: Mapping[str, Mapping[str, Any]]) -> Document:
        """Set fields within parts (``{"shipping": {"baseFee": 40}}``); the result."""


class IOrders(Interface):
    async def insert(doc: Mapping[str, Any]) -> Document:
        """Insert an order (its ``_id`` chosen by the caller)."""

    async def get(order_id: ObjectId) -> Optional[Document]:
        """The order in any state, or None."""

    async def for_user(user_id: ObjectId) -> builtins.list[Document]:
        """The user's placed orders, newest first."""

    async def list(page: int, limit: int, status: Optional[str]) -> Page:
        """Placed orders newest first, optionally with one status."""

    async def transition(order_id: ObjectId, current: str, changes: Mapping[str, Any]) -> bool:
        """Set fields only if the order is still in ``current``; whether it was."""

    async def update(order_id: ObjectId, changes: Mapping[str, Any]) -> Optional[Document]:
        """Set fields; the updated order, or None."""

    async def delete(order_id: ObjectId) -> bool:
        """Remove; whether one was removed."""

    async def unfinished(before: Any) -> builtins.list[Document]:
        """Orders last changed before ``before`` that still hold or owe stock:
        being placed (Reserving/Failed), or Cancelled without their stock back.

        An order whose ``expireAt`` has passed is gone (a TTL index)."""

    async def expire_released(expire_at: Any) -> int:
        """Give released Failed orders without an ``expireAt`` (left by
        earlier versions) this one; how many."""


class IStock(Interface):
    """Stock moves on the products collection. Each move is one guarded
    single-document update that also records (or clears) the order it was
    made for, so a move is applied at most once and can be repaired."""

    async def by_ids(ids: Sequence[ObjectId]) -> builtins.list[Document]:
        """The products among these ids."""

    async def available(product_id: ObjectId) -> int:
        """The product's quantity now (0 when unknown)."""

    async def reserve(product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        """Take ``qty`` if at least that many are left and not yet taken for this order."""

    async def unreserve(product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        """Give back what ``reserve`` took for this order, if it still holds it."""

    async def settle(product_id: ObjectId, order_id: ObjectId) -> None:
        """Forget the reservation record of a placed order (the stock stays taken)."""

    async def restock(product_id: ObjectId, qty: int, order_id: ObjectId) -> bool:
        """Return a cancelled order's ``qty``, unless already returned for it."""

    async def settle_restock(product_id: ObjectId, order_id: ObjectId) -> None:
        """Forget the return record once the order says its stock is back."""

    async def marked() -> builtins.list[Document]:
        """Products still carrying reservation or return records
        (``_id``, ``reservedBy``, ``returnedBy``)."""


class IIdempotency(Interface):
    async def claim(record: Mapping[str, Any]) -> Optional[Document]:
        """Insert a running record for (user, key); None when claimed, else the
        record already there."""

    async def complete(record_id: ObjectId, status: int, body: str) -> None:
        """Store the response of a finished request."""

    async def mark_unknown(record_id: ObjectId) -> None:
        """Note on a running record that its request ended not knowing
        whether its order was placed (``unknown: True``)."""

    async def drop(record_id: ObjectId, running_only: bool) -> bool:
        """Remove a record (only while running, if asked); whether removed."""


class IStore(Interface):
    users = Attribute("IUsers")
    categories = Attribute("ICategories")
    products = Attribute("IProducts")
    banners = Attribute("IBanners")
    notifications = Attribute("INotifications")
    chit = Attribute("IChit")
    uploads = Attribute("IUploads")
    dashboard = Attribute("IDashboard")
    settings = Attribute("ISettings")
    orders = Attribute("IOrders")
    stock = Attribute("IStock")
    idempotency = Attribute("IIdempotency")

    async def ping() -> None:
        """Fails with DatabaseUnavailable unless the database answers."""

    async def ensure_indexes() -> None:
        """Create the indexes the queries need (idempotent)."""
