"""/api/v1/products and /api/v1/categories."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

from bson import ObjectId

from crackershop.app.models import (
    CategoryBody,
    CategoryUpdateBody,
    ProductBody,
    ProductUpdateBody,
)
from crackershop.app.notify import Notifier
from crackershop.app.routing import Call, Reply, Route, ok, paginated, parse_object_id
from crackershop.app.views import public_category, public_product
from crackershop.errors import Conflict, NotFound, ValidationFailed
from crackershop.store.interfaces import SORTS, IStore, ProductQuery

MAX_LIMIT = 100
MAX_SEARCH = 100


def _int_arg(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationFailed("Invalid query", {name: f"must be an integer from {low} to {high}"})
    return value


def _price_arg(args: Mapping[str, str], name: str) -> Optional[float]:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValidationFailed("Invalid query", {name: "must be a non-negative number"})
    return value


def _flag(args: Mapping[str, str], name: str) -> bool:
    raw = args.get(name)
    if raw is None or raw in ("", "false"):
        return False
    if raw == "true":
        return True
    raise ValidationFailed("Invalid query", {name: "must be true or false"})


def _search_text(raw: Optional[str]) -> Optional[str]:
    if raw is None:
        return None
    text = raw.strip()
    if len(text) > MAX_SEARCH:
        raise ValidationFailed("Invalid query", {"search": f"at most {MAX_SEARCH} characters"})
    return text or None


def page_args(args: Mapping[str, str]) -> dict[str, int]:
    return {
        "page": _int_arg(args, "page", 1, 1, 1_000_000),
        "limit": _int_arg(args, "limit", 10, 1, MAX_LIMIT),
    }


class CatalogueHandlers:
    def __init__(self, store: IStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier

    def routes(self) -> list[Route]:
        p, c = "/api/v1/products", "/api/v1/categories"
        query = (
            "page",
            "limit",
            "category",
            "search",
            "featured",
            "diwaliSpecial",
            "minPrice",
            "maxPrice",
            "sortBy",
        )
        return [
            Route(
                "GET",
                p,
                self.list_products,
                "List products",
                access="optional",
                query=query,
                tag="products",
            ),
            Route(
                "GET",
                f"{p}/search/query",
                self.search_products,
                "Search products by text",
                access="optional",
                query=("q", "page", "limit"),
                tag="products",
            ),
            Route(
                "GET",
                f"{p}/{{id}}",
                self.get_product,
                "One product",
                access="optional",
                tag="products",
            ),
            Route(
                "POST",
                p,
                self.create_product,
                "Create a product",
                access="admin",
                body=ProductBody,
                tag="products",
            ),
            Route(
                "PUT",
                f"{p}/{{id}}",
                self.update_product,
                "Update a product",
                access="admin",
                body=ProductUpdateBody,
                tag="products",
            ),
            Route(
                "DELETE",
                f"{p}/{{id}}",
                self.delete_product,
                "Delete a product",
                access="admin",
                tag="products",
            ),
            Route(
                "GET",
                c,
                self.list_categories,
                "List categories",
                access="optional",
                tag="categories",
            ),
            Route(
                "GET",
                f"{c}/{{id}}",
                self.get_category,
                "One category",
                access="optional",
                tag="categories",
            ),
            Route(
                "POST",
                c,
                self.create_category,
                "Create a category",
                access="admin",
                body=CategoryBody,
                tag="categories",
            ),
            Route(
                "PUT",
                f"{c}/{{id}}",
                self.update_category,
                "Update a category",
                access="admin",
                body=CategoryUpdateBody,
                tag="categories",
            ),
            Route(
                "DELETE",
                f"{c}/{{id}}",
                self.delete_category,
                "Delete a category",
                access="admin",
                tag="categories",
            ),
        ]

    # -- products

    async def _with_categories(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = list({d["category"] for d in docs if isinstance(d.get("category"), ObjectId)})
        found = await self.store.categories.by_ids(ids)
        by_id = {c["_id"]: c for c in found}
        return [public_product(d, by_id) for d in docs]

    async def list_products(self, call: Call) -> Reply:
        args = call.args
        paging = page_args(args)
        sort = args.get("sortBy") or "-createdAt"
        if sort not in SORTS:
            raise ValidationFailed(
                "Invalid query", {"sortBy": "must be one of " + ", ".join(SORTS)}
            )
        category = None
        if args.get("category"):
            try:
                category = parse_object_id(args["category"], "Category")
            except NotFound:
                raise ValidationFailed(
                    "Invalid query", {"category": "must be a category id"}
                ) from None
        min_price, max_price = _price_arg(args, "minPrice"), _price_arg(args, "maxPrice")
        query = ProductQuery(
            page=paging["page"],
            limit=paging["limit"],
            category=category,
            search=_search_text(args.get("search")),
            featured=_flag(args, "featured"),
            diwali_special=_flag(args, "diwaliSpecial"),
            min_price=min_price,
            max_price=max_price,
            sort=sort,
            include_inactive=call.is_admin,
        )
        page = await self.store.products.list(query)
        items = await self._with_categories(page.items)
        return paginated(items, page.total, query.page, query.limit)

    async def search_products(self, call: Call) -> Reply:
        args = call.args
        text = _search_text(args.get("q"))
        if not text:
            raise ValidationFailed("Invalid query", {"q": "search text is required"})
        paging = page_args(args)
        query = ProductQuery(
            page=paging["page"],
            limit=paging["limit"],
            search=text,
            include_inactive=call.is_admin,
        )
        page = await self.store.products.list(query)
        items = await self._with_categories(page.items)
        return paginated(items, page.total, query.page, query.limit)

    async def _visible_product(self, call: Call) -> dict[str, Any]:
        product = await self.store.products.get(call.object_id("id", "Product"))
        if product is None or (product.get("status") == "Inactive" and not call.is_admin):
            raise NotFound("Product not found")
        return product

    async def get_product(self, call: Call) -> Reply:
        product = await self._visible_product(call)
        return ok((await self._with_categories([product]))[0])

    async def _check_category(self, category: Optional[str]) -> Optional[ObjectId]:
        if category is None:
            return None
        category_id = ObjectId(category)
        if await self.store.categories.get(category_id) is None:
            raise ValidationFailed("Validation failed", {"category": "no such category"})
        return category_id

    @staticmethod
    def _check_prices(price: Optional[float], discount: Optional[float]) -> None:
        if price is not None and discount is not None and discount > price:
            raise ValidationFailed(
                "Validation failed", {"discountPrice": "must not exceed the price"}
            )

    async def create_product(self, call: Call) -> Reply:
        body: ProductBody = call.body
        fields = body.model_dump(exclude_none=True)
        self._check_prices(body.price, body.discountPrice)
        fields["category"] = await self._check_category(body.category)
        fields.setdefault("quantity", 0)
        fields.setdefault("images", [fields["image"]] if fields.get("image") else [])
        if fields["images"] and not fields.get("image"):
            fields["image"] = fields["images"][0]
        fields.setdefault("isFeatured", False)
        fields.setdefault("isDiwaliSpecial", False)
        fields.setdefault("status", "Active")
        product = await self.store.products.create(fields)
        if product.get("status") == "Active":
            self.notifier.broadcast(
                "customer",
                "New arrival",
                f"{product['name']} is now in the shop.",
                "promotion",
                {"productId": str(product["_id"])},
            )
        return ok((await self._with_categories([product]))[0], 201)

    async def update_product(self, call: Call) -> Reply:
        body: ProductUpdateBody = call.body
        product_id = call.object_id("id", "Product")
        current = await self.store.products.get(product_id)
        if current is None:
            raise NotFound("Product not found")
        changes = body.model_dump(exclude_unset=True)
        for required in ("name", "price", "category"):
            if required in changes and changes[required] is None:
                raise ValidationFailed("Validation failed", {required: "may not be null"})
        self._check_prices(
            changes.get("price", current.get("price")),
            changes.get("discountPrice", current.get("discountPrice")),
        )
        if "category" in changes:
            changes["category"] = await self._check_category(changes["category"])
        if changes.get("images") is not None and "image" not in changes:
            changes["image"] = changes["images"][0] if changes["images"] else None
        updated = await self.store.products.update(product_id, changes)
        if updated is None:
            raise NotFound("Product not found")
        return ok((await self._with_categories([updated]))[0])

    async def delete_product(self, call: Call) -> Reply:
        if not await self.store.products.delete(call.object_id("id", "Product")):
            raise NotFound("Product not found")
        return ok({})

    # -- categories

    async def list_categories(self, call: Call) -> Reply:
        docs = await self.store.categories.list(include_inactive=call.is_admin)
        return ok([public_category(d) for d in docs], count=len(docs))

    async def get_category(self, call: Call) -> Reply:
        category = await self.store.categories.get(call.object_id("id", "Category"))
        if category is None or (category.get("status") == "Inactive" and not call.is_admin):
            raise NotFound("Category not found")
        return ok(public_category(category))

    async def create_category(self, call: Call) -> Reply:
        body: CategoryBody = call.body
        category = await self.store.categories.create(body.model_dump(exclude_none=True))
        return ok(public_category(category), 201)

    async def update_category(self, call: Call) -> Reply:
        body: CategoryUpdateBody = call.body
        changes = body.model_dump(exclude_unset=True)
        if "name" in changes and changes["name"] is None:
            raise ValidationFailed("Validation failed", {"name": "may not be null"})
        category_id = call.object_id("id", "Category")
        updated = await self.store.categories.update(category_id, changes)
        if updated is None:
            raise NotFound("Category not found")
        return ok(public_category(updated))

    async def delete_category(self, call: Call) -> Reply:
        category_id = call.object_id("id", "Category")
        if await self.store.categories.get(category_id) is None:
            raise NotFound("Category not found")
        in_use = await self.store.products.count_in_category(category_id)
        if in_use:
            raise Conflict(
                f"Category still has {in_use} product(s); move or delete them first",
                {"category": "has products"},
            )
        await self.store.categories.delete(category_id)
        return ok({})
