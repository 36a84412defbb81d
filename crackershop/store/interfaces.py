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


class IStore(Interface):
    users = Attribute("IUsers")
    categories = Attribute("ICategories")
    products = Attribute("IProducts")

    async def ping() -> None:
        """Fails with DatabaseUnavailable unless the database answers."""

    async def ensure_indexes() -> None:
        """Create the indexes the queries need (idempotent)."""
