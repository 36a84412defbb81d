"""/api/v1/categories."""

from __future__ import annotations

from bson import ObjectId

from crackershop.app.models import CategoryBody, CategoryUpdateBody
from crackershop.app.responses import Category, Empty, Listing, Success
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.app.uploads import Uploads, one, ref
from crackershop.app.views import public_category
from crackershop.errors import Conflict, NotFound, ValidationFailed
from crackershop.store.catalogue import ICatalogue
from crackershop.store.interfaces import IStore


class CategoryHandlers:
    def __init__(self, store: IStore, uploads: Uploads, catalogue: ICatalogue) -> None:
        self.store = store
        self.uploads = uploads
        # customers read through the catalogue (cached); admins read the store
        self.catalogue = catalogue

    def routes(self) -> list[Route]:
        c = "/api/v1/categories"
        return [
            Route(
                "GET",
                c,
                self.list,
                "List categories",
                operation="listCategories",
                access="optional",
                response=Listing[Category],
                tag="categories",
            ),
            Route(
                "GET",
                f"{c}/{{id}}",
                self.get,
                "One category",
                operation="getCategory",
                access="optional",
                response=Success[Category],
                tag="categories",
            ),
            Route(
                "POST",
                c,
                self.create,
                "Create a category (JSON or multipart with image)",
                operation="createCategory",
                access="admin",
                body=CategoryBody,
                files={"image": 1},
                response=Success[Category],
                success=(201,),
                tag="categories",
            ),
            Route(
                "PUT",
                f"{c}/{{id}}",
                self.update,
                "Update a category",
                operation="updateCategory",
                access="admin",
                body=CategoryUpdateBody,
                files={"image": 1},
                response=Success[Category],
                tag="categories",
            ),
            Route(
                "DELETE",
                f"{c}/{{id}}",
                self.delete,
                "Delete a category without products",
                operation="deleteCategory",
                access="admin",
                response=Success[Empty],
                tag="categories",
            ),
        ]

    async def list(self, call: Call) -> Reply:
        if call.is_admin:
            docs = await self.store.categories.list(include_inactive=True)
        else:
            docs = await self.catalogue.categories()
        return ok([public_category(d) for d in docs], count=len(docs))

    async def get(self, call: Call) -> Reply:
        category = await self.store.categories.get(call.object_id("id", "Category"))
        if category is None or (category.get("status") == "Inactive" and not call.is_admin):
            raise NotFound("Category not found")
        return ok(public_category(category))

    async def create(self, call: Call) -> Reply:
        body: CategoryBody = call.body
        fields = body.model_dump(exclude_none=True, exclude={"clearImage"})
        if body.clearImage:
            fields.pop("image", None)
        fields["_id"] = ObjectId()
        admin = call.require_user()["_id"]
        async with self.uploads.single(
            call, "image", ref("category", fields["_id"]), fields, owner=admin
        ):
            category = await self.store.categories.create(fields)
        return ok(public_category(category), 201)

    async def update(self, call: Call) -> Reply:
        body: CategoryUpdateBody = call.body
        changes = body.model_dump(exclude_unset=True, exclude={"clearImage"})
        if body.clearImage:
            changes["image"] = None
        if "name" in changes and changes["name"] is None:
            raise ValidationFailed(None, {"name": "may not be null"})
        category_id = call.object_id("id", "Category")
        current = await self.store.categories.get(category_id)
        if current is None:
            raise NotFound("Category not found")
        async with self.uploads.single(
            call,
            "image",
            ref("category", category_id),
            changes,
            current=current.get("image"),
            owner=call.require_user()["_id"],
        ):
            updated = await self.store.categories.update(category_id, changes)
            if updated is None:
                raise NotFound("Category not found")
        return ok(public_category(updated))

    async def delete(self, call: Call) -> Reply:
        category_id = call.object_id("id", "Category")
        category = await self.store.categories.get(category_id)
        if category is None:
            raise NotFound("Category not found")
        in_use = await self.store.products.count_in_category(category_id)
        if in_use:
            raise Conflict(
                f"Category still has {in_use} product(s); move or delete them first",
                {"category": "has products"},
            )
        await self.store.categories.delete(category_id)
        await self.uploads.release(one(category.get("image")), ref("category", category_id))
        return ok({})
