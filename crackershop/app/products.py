"""/api/v1/products: the catalogue, with images uploaded by admins."""

from __future__ import annotations

from typing import Any, Optional

from bson import ObjectId

from crackershop.app.models import ProductBody, ProductUpdateBody
from crackershop.app.notify import Notifier
from crackershop.app.queries import flag, page_args, price_arg, search_text
from crackershop.app.rendered import Rendered
from crackershop.app.responses import Empty, Paginated, Product, Success
from crackershop.app.routing import Call, Reply, Route, ok, paginated, parse_object_id
from crackershop.app.uploads import Uploads, ref
from crackershop.app.views import public_product
from crackershop.errors import NotFound, ValidationFailed
from crackershop.store.catalogue import ICatalogue
from crackershop.store.interfaces import SORTS, Document, IStore, ProductQuery

MAX_IMAGES = 5
LIST_QUERY = (
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


class ProductHandlers:
    def __init__(
        self,
        store: IStore,
        notifier: Notifier,
        uploads: Uploads,
        catalogue: ICatalogue,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.uploads = uploads
        # customers read through the catalogue (cached); admins read the store
        self.catalogue = catalogue
        # customers' list pages and product pages, encoded once per
        # catalogue fetch
        self.rendered = Rendered()

    def routes(self) -> list[Route]:
        p = "/api/v1/products"
        return [
            Route(
                "GET",
                p,
                self.list_products,
                "List products",
                operation="listProducts",
                access="optional",
                query=LIST_QUERY,
                response=Paginated[Product],
                tag="products",
            ),
            Route(
                "GET",
                f"{p}/search/query",
                self.search,
                "Search products by text",
                operation="searchProducts",
                access="optional",
                query=("q", "page", "limit"),
                response=Paginated[Product],
                tag="products",
            ),
            Route(
                "GET",
                f"{p}/{{id}}",
                self.get,
                "One product",
                operation="getProduct",
                access="optional",
                response=Success[Product],
                tag="products",
            ),
            Route(
                "POST",
                p,
                self.create,
                "Create a product (JSON or multipart with images)",
                operation="createProduct",
                access="admin",
                body=ProductBody,
                files={"images": MAX_IMAGES},
                response=Success[Product],
                success=(201,),
                tag="products",
            ),
            Route(
                "PUT",
                f"{p}/{{id}}",
                self.update,
                "Update a product",
                operation="updateProduct",
                access="admin",
                body=ProductUpdateBody,
                files={"images": MAX_IMAGES},
                response=Success[Product],
                tag="products",
            ),
            Route(
                "DELETE",
                f"{p}/{{id}}",
                self.delete,
                "Delete a product and its images",
                operation="deleteProduct",
                access="admin",
                response=Success[Empty],
                tag="products",
            ),
        ]

    async def _with_categories(self, docs: list[Document]) -> list[dict[str, Any]]:
        """Admins' view: the categories read from the store itself."""
        found = await self.store.categories.by_ids(_category_ids(docs))
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
        query = ProductQuery(
            page=paging["page"],
            limit=paging["limit"],
            category=category,
            search=search_text(args.get("search")),
            featured=flag(args, "featured"),
            diwali_special=flag(args, "diwaliSpecial"),
            min_price=price_arg(args, "minPrice"),
            max_price=price_arg(args, "maxPrice"),
            sort=sort,
            include_inactive=call.is_admin,
        )
        return await self._page(call, query)

    async def _page(self, call: Call, query: ProductQuery) -> Reply:
        if call.is_admin:
            page = await self.store.products.list(query)
            items = await self._with_categories(page.items)
            return paginated(items, page.total, query.page, query.limit)
        page = await self.catalogue.products(query)
        ids = _category_ids(page.items)
        categories = await self.catalogue.categories_by_ids(ids)
        sources = (page, categories)
        kept = self.rendered.get(query, sources)
        if kept is not None:
            return kept
        by_id = {c["_id"]: c for c in categories}
        items = [public_product(d, by_id) for d in page.items]
        return self.rendered.put(
            query, sources, paginated(items, page.total, query.page, query.limit)
        )

    async def search(self, call: Call) -> Reply:
        args = call.args
        text = search_text(args.get("q"))
        if not text:
            raise ValidationFailed("Invalid query", {"q": "search text is required"})
        paging = page_args(args)
        query = ProductQuery(
            page=paging["page"],
            limit=paging["limit"],
            search=text,
            include_inactive=call.is_admin,
        )
        return await self._page(call, query)

    async def get(self, call: Call) -> Reply:
        product_id = call.object_id("id", "Product")
        if call.is_admin:
            product = await self.store.products.get(product_id)
            if product is None:
                raise NotFound("Product not found")
            return ok((await self._with_categories([product]))[0])
        product = await self.catalogue.product(product_id)
        if product is None:
            raise NotFound("Product not found")
        categories = await self.catalogue.categories_by_ids(_category_ids([product]))
        sources = (product, categories)
        kept = self.rendered.get(product_id, sources)
        if kept is not None:
            return kept
        by_id = {c["_id"]: c for c in categories}
        return self.rendered.put(product_id, sources, ok(public_product(product, by_id)))

    async def _check_category(self, category: Optional[str]) -> Optional[ObjectId]:
        if category is None:
            return None
        category_id = ObjectId(category)
        if await self.store.categories.get(category_id) is None:
            raise ValidationFailed(None, {"category": "no such category"})
        return category_id

    @staticmethod
    def _check_prices(price: Optional[float], discount: Optional[float]) -> None:
        if price is not None and discount is not None and discount > price:
            raise ValidationFailed(None, {"discountPrice": "must not exceed the price"})

    @staticmethod
    def _check_count(count: int) -> None:
        if count > MAX_IMAGES:
            raise ValidationFailed(None, {"images": f"at most {MAX_IMAGES}"})

    @staticmethod
    def _set_images(fields: dict[str, Any], images: list[str]) -> None:
        fields["images"] = images
        fields["image"] = images[0] if images else None

    async def create(self, call: Call) -> Reply:
        body: ProductBody = call.body
        fields = body.model_dump(exclude_none=True, exclude={"clearImages"})
        self._check_prices(body.price, body.discountPrice)
        fields["category"] = await self._check_category(body.category)
        given = list(fields.pop("images", [])) + list(fields.pop("existingImages", []))
        if not given and fields.get("image"):
            given = [fields["image"]]
        if body.clearImages:
            given = []
        fields.setdefault("quantity", 0)
        fields.setdefault("isFeatured", False)
        fields.setdefault("isDiwaliSpecial", False)
        fields.setdefault("status", "Active")
        self._check_count(len(given) + len(call.files.get("images", [])))
        fields["_id"] = ObjectId()
        uses = ref("product", fields["_id"])
        admin = call.require_user()["_id"]
        async with self.uploads.editing(call, "images", uses, given=given, owner=admin) as edit:
            self._set_images(fields, given + edit.added)
            edit.uses = fields["images"]
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

    async def update(self, call: Call) -> Reply:
        body: ProductUpdateBody = call.body
        product_id = call.object_id("id", "Product")
        current = await self.store.products.get(product_id)
        if current is None:
            raise NotFound("Product not found")
        changes = body.model_dump(exclude_unset=True, exclude={"clearImages"})
        for required in ("name", "price", "category"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(None, {required: "may not be null"})
        self._check_prices(
            changes.get("price", current.get("price")),
            changes.get("discountPrice", current.get("discountPrice")),
        )
        if "category" in changes:
            changes["category"] = await self._check_category(changes["category"])
        uploaded = call.files.get("images", [])
        kept: Optional[list[str]] = None
        if body.clearImages:
            # the app's form has no image left (new files may follow)
            kept = []
        elif "existingImages" in changes or uploaded:
            # The app sends the URLs to keep beside the new files.
            kept = changes.pop("existingImages", None)
            if kept is None:
                kept = list(current.get("images") or [])
        elif changes.get("images") is not None:
            kept = changes.pop("images")
        changes.pop("images", None)
        changes.pop("existingImages", None)
        if kept is not None:
            self._check_count(len(kept) + len(uploaded))
        before = list(current.get("images") or [])
        async with self.uploads.editing(
            call,
            "images",
            ref("product", product_id),
            before=before,
            given=kept or [],
            owner=call.require_user()["_id"],
        ) as edit:
            edit.uses = before
            if kept is not None:
                self._set_images(changes, kept + edit.added)
                edit.uses = changes["images"]
            updated = await self.store.products.update(product_id, changes)
            if updated is None:
                raise NotFound("Product not found")
        return ok((await self._with_categories([updated]))[0])

    async def delete(self, call: Call) -> Reply:
        product_id = call.object_id("id", "Product")
        product = await self.store.products.get(product_id)
        if product is None or not await self.store.products.delete(product_id):
            raise NotFound("Product not found")
        await self.uploads.release(product.get("images") or [], ref("product", product_id))
        return ok({})


def _category_ids(docs: list[Document]) -> list[ObjectId]:
    return list({d["category"] for d in docs if isinstance(d.get("category"), ObjectId)})
