"""/api/v1/banners and /api/v1/notifications."""

from __future__ import annotations

from bson import ObjectId

from crackershop.app.models import BannerBody, BannerUpdateBody
from crackershop.app.responses import (
    Banner,
    Empty,
    Listing,
    Modified,
    Notification,
    Notifications,
    Success,
)
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.app.uploads import Uploads, one, ref
from crackershop.errors import NotFound, ValidationFailed
from crackershop.store.interfaces import IStore

NOTIFICATION_PAGE = 100


class BannerHandlers:
    def __init__(self, store: IStore, uploads: Uploads) -> None:
        self.store = store
        self.uploads = uploads

    def routes(self) -> list[Route]:
        p = "/api/v1/banners"
        return [
            Route(
                "GET",
                p,
                self.list,
                "List banners",
                operation="listBanners",
                access="optional",
                response=Listing[Banner],
                tag="banners",
            ),
            Route(
                "POST",
                p,
                self.create,
                "Create a banner (JSON or multipart with image)",
                operation="createBanner",
                access="admin",
                body=BannerBody,
                files={"image": 1},
                response=Success[Banner],
                success=(201,),
                tag="banners",
            ),
            Route(
                "PUT",
                f"{p}/{{id}}",
                self.update,
                "Update a banner",
                operation="updateBanner",
                access="admin",
                body=BannerUpdateBody,
                files={"image": 1},
                response=Success[Banner],
                tag="banners",
            ),
            Route(
                "DELETE",
                f"{p}/{{id}}",
                self.delete,
                "Delete a banner",
                operation="deleteBanner",
                access="admin",
                response=Success[Empty],
                tag="banners",
            ),
        ]

    async def list(self, call: Call) -> Reply:
        banners = await self.store.banners.list(include_inactive=call.is_admin)
        return ok(banners, count=len(banners))

    async def create(self, call: Call) -> Reply:
        body: BannerBody = call.body
        fields = body.model_dump(exclude_none=True)
        files = call.files.get("image", [])
        if not files and not fields.get("image"):
            raise ValidationFailed(None, {"image": "an image URL or file is required"})
        fields["_id"] = ObjectId()
        admin = call.require_user()["_id"]
        async with self.uploads.single(
            call, "image", ref("banner", fields["_id"]), fields, owner=admin
        ):
            banner = await self.store.banners.create(fields)
        return ok(banner, 201)

    async def update(self, call: Call) -> Reply:
        body: BannerUpdateBody = call.body
        changes = body.model_dump(exclude_unset=True)
        for required in ("title", "image"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(None, {required: "may not be null"})
        banner_id = call.object_id("id", "Banner")
        current = await self.store.banners.get(banner_id)
        if current is None:
            raise NotFound("Banner not found")
        async with self.uploads.single(
            call,
            "image",
            ref("banner", banner_id),
            changes,
            current=current.get("image"),
            owner=call.require_user()["_id"],
        ):
            updated = await self.store.banners.update(banner_id, changes) if changes else current
            if updated is None:
                raise NotFound("Banner not found")
        return ok(updated)

    async def delete(self, call: Call) -> Reply:
        banner_id = call.object_id("id", "Banner")
        banner = await self.store.banners.get(banner_id)
        if banner is None or not await self.store.banners.delete(banner_id):
            raise NotFound("Banner not found")
        await self.uploads.release(one(banner.get("image")), ref("banner", banner_id))
        return ok({})


class NotificationHandlers:
    def __init__(self, store: IStore) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        p = "/api/v1/notifications"
        return [
            Route(
                "GET",
                p,
                self.list,
                "My notifications, newest first",
                operation="listNotifications",
                access="user",
                response=Notifications,
                tag="notifications",
            ),
            Route(
                "PUT",
                f"{p}/read-all",
                self.read_all,
                "Mark all mine read",
                operation="markAllNotificationsRead",
                access="user",
                response=Success[Modified],
                tag="notifications",
            ),
            Route(
                "PUT",
                f"{p}/{{id}}/read",
                self.read,
                "Mark one read",
                operation="markNotificationRead",
                access="user",
                response=Success[Notification],
                tag="notifications",
            ),
            Route(
                "DELETE",
                f"{p}/{{id}}",
                self.delete,
                "Delete one of mine",
                operation="deleteNotification",
                access="user",
                response=Success[Empty],
                tag="notifications",
            ),
        ]

    async def list(self, call: Call) -> Reply:
        items, unread = await self.store.notifications.list_for(
            call.require_user()["_id"], NOTIFICATION_PAGE
        )
        return ok(items, count=len(items), unreadCount=unread)

    async def read_all(self, call: Call) -> Reply:
        changed = await self.store.notifications.mark_all_read(call.require_user()["_id"])
        return ok({"modified": changed})

    async def read(self, call: Call) -> Reply:
        found = await self.store.notifications.mark_read(
            call.require_user()["_id"], call.object_id("id", "Notification")
        )
        if found is None:
            raise NotFound("Notification not found")
        return ok(found)

    async def delete(self, call: Call) -> Reply:
        deleted = await self.store.notifications.delete(
            call.require_user()["_id"], call.object_id("id", "Notification")
        )
        if not deleted:
            raise NotFound("Notification not found")
        return ok({})
