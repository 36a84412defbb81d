"""/api/v1/users: account administration."""

from __future__ import annotations

import builtins

from crackershop.app.models import UserAdminUpdateBody
from crackershop.app.queries import page_args
from crackershop.app.responses import Empty, Paginated, Success, User
from crackershop.app.routing import Call, Reply, Route, ok, paginated
from crackershop.app.uploads import Uploads, one, ref
from crackershop.app.views import public_user
from crackershop.errors import Conflict, NotFound
from crackershop.store.interfaces import IStore


class UserHandlers:
    def __init__(self, store: IStore, uploads: Uploads) -> None:
        self.store = store
        self.uploads = uploads

    def routes(self) -> builtins.list[Route]:
        p = "/api/v1/users"
        return [
            Route(
                "GET",
                p,
                self.list,
                "List users",
                operation="listUsers",
                access="admin",
                query=("page", "limit"),
                response=Paginated[User],
                tag="users",
            ),
            Route(
                "GET",
                f"{p}/{{id}}",
                self.get,
                "One user",
                operation="getUser",
                access="admin",
                response=Success[User],
                tag="users",
            ),
            Route(
                "PUT",
                f"{p}/{{id}}",
                self.update,
                "Change a user's role or status",
                operation="updateUser",
                access="admin",
                body=UserAdminUpdateBody,
                response=Success[User],
                tag="users",
            ),
            Route(
                "DELETE",
                f"{p}/{{id}}",
                self.delete,
                "Delete a user",
                operation="deleteUser",
                access="admin",
                response=Success[Empty],
                tag="users",
            ),
        ]

    async def list(self, call: Call) -> Reply:
        paging = page_args(call.args)
        page = await self.store.users.list(paging["page"], paging["limit"])
        items = [public_user(u) for u in page.items]
        return paginated(items, page.total, paging["page"], paging["limit"])

    async def get(self, call: Call) -> Reply:
        user = await self.store.users.get(call.object_id("id", "User"))
        if user is None:
            raise NotFound("User not found")
        return ok(public_user(user))

    async def update(self, call: Call) -> Reply:
        body: UserAdminUpdateBody = call.body
        user_id = call.object_id("id", "User")
        changes = body.model_dump(exclude_none=True)
        if user_id == call.require_user()["_id"] and changes.get("role", "admin") != "admin":
            raise Conflict("You cannot remove your own admin role")
        if user_id == call.require_user()["_id"] and changes.get("status", "Active") != "Active":
            raise Conflict("You cannot block your own account")
        user = (
            await self.store.users.update(user_id, changes)
            if changes
            else (await self.store.users.get(user_id))
        )
        if user is None:
            raise NotFound("User not found")
        return ok(public_user(user))

    async def delete(self, call: Call) -> Reply:
        user_id = call.object_id("id", "User")
        if user_id == call.require_user()["_id"]:
            raise Conflict("You cannot delete your own account")
        user = await self.store.users.get(user_id)
        if user is None or not await self.store.users.delete(user_id):
            raise NotFound("User not found")
        await self.uploads.release(one(user.get("avatar")), ref("user", user_id))
        return ok({})
