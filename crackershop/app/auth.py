"""/api/v1/auth, and who the caller of a request is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Optional

from bson import ObjectId
from bson.errors import InvalidId
from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest

from crackershop.app.models import (
    AddressBody,
    ChangePasswordBody,
    ForgotPasswordBody,
    LoginBody,
    RegisterBody,
    ResetPasswordBody,
    UpdateDetailsBody,
)
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.app.security import (
    InvalidToken,
    Passwords,
    Tokens,
    hash_reset_token,
    new_reset_token,
)
from crackershop.app.uploads import Uploads
from crackershop.app.usercache import UserCache
from crackershop.app.views import public_user
from crackershop.errors import BadRequest, Forbidden, NotFound, Unauthorized
from crackershop.mail import IMailer
from crackershop.store.interfaces import IStore
from crackershop.store.mongo import now_utc

RESET_TOKEN_LIFETIME = timedelta(hours=1)
BAD_CREDENTIALS = "Invalid email or password"


class Authenticator:
    """Finds the user behind a request's bearer token.

    The user record is read for every request (through ``users``, a brief
    per-worker cache whose bound is documented in usercache.py), so
    blocking a user or changing a password takes effect at once on this
    worker and within AUTH_CACHE_TTL on the others.
    """

    def __init__(self, store: IStore, tokens: Tokens, users: Optional[UserCache] = None) -> None:
        self.store = store
        self.tokens = tokens
        self.users = users

    async def __call__(self, request: IRequest, required: bool) -> Optional[dict[str, Any]]:
        header = request.getHeader(b"authorization") or b""
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            if required:
                raise Unauthorized("Not authorized to access this route")
            return None
        try:
            payload = self.tokens.verify(token.strip().decode("ascii"))
            user_id = ObjectId(payload["id"])
        except (InvalidToken, InvalidId, UnicodeDecodeError):
            if required:
                raise Unauthorized("Not authorized, token is invalid or expired") from None
            return None
        if self.users is not None:
            user = await self.users.get(user_id)
        else:
            user = await self.store.users.get(user_id)
        if user is None or payload.get("tv", 0) != user.get("tokenVersion", 0):
            if required:
                raise Unauthorized("Not authorized, token is no longer valid")
            return None
        if user.get("status", "Active") != "Active":
            raise Forbidden(f"Your account is {str(user.get('status')).lower()}")
        return user


class AuthHandlers:
    def __init__(
        self,
        store: IStore,
        tokens: Tokens,
        passwords: Passwords,
        mailer: IMailer,
        clock: IReactorTime,
        public_url: str,
        uploads: Uploads,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.passwords = passwords
        self.mailer = mailer
        self.clock = clock
        self.public_url = public_url
        self.uploads = uploads

    def routes(self) -> list[Route]:
        p = "/api/v1/auth"
        return [
            Route(
                "POST",
                f"{p}/register",
                self.register,
                "Create an account (JSON or multipart with an avatar)",
                body=RegisterBody,
                files={"avatar": 1},
            ),
            Route("POST", f"{p}/login", self.login, "Log in", body=LoginBody, statuses=(401, 403)),
            Route(
                "POST",
                f"{p}/forgotpassword",
                self.forgot_password,
                "Ask for a password reset",
                body=ForgotPasswordBody,
            ),
            Route(
                "POST",
                f"{p}/resetpassword",
                self.reset_password,
                "Set a new password with a reset token",
                body=ResetPasswordBody,
            ),
            Route("GET", f"{p}/me", self.me, "The caller's account", access="user"),
            Route(
                "PUT",
                f"{p}/updatedetails",
                self.update_details,
                "Update name, mobile number, address and avatar",
                access="user",
                body=UpdateDetailsBody,
                files={"avatar": 1},
            ),
            Route(
                "PUT",
                f"{p}/change-password",
                self.change_password,
                "Change the password; older tokens stop working",
                access="user",
                body=ChangePasswordBody,
            ),
            Route(
                "POST",
                f"{p}/addresses",
                self.add_address,
                "Add a saved address",
                access="user",
                body=AddressBody,
            ),
            Route(
                "PUT",
                f"{p}/addresses/{{id}}/default",
                self.default_address,
                "Make a saved address the default",
                access="user",
            ),
            Route(
                "DELETE",
                f"{p}/addresses/{{id}}",
                self.delete_address,
                "Delete a saved address",
                access="user",
            ),
        ]

    def session(self, user: Mapping[str, Any], status: int = 200) -> Reply:
        token = self.tokens.issue(str(user["_id"]), user.get("tokenVersion", 0))
        return ok(public_user(user), status, token=token)

    async def register(self, call: Call) -> Reply:
        body: RegisterBody = call.body
        doc: dict[str, Any] = {
            "name": body.name,
            "email": body.email,
            "password": await self.passwords.hash(body.password),
            "role": "customer",
            "status": "Active",
            "addresses": [],
        }
        if body.mobileNumber:
            doc["mobileNumber"] = body.mobileNumber
        if body.avatar:
            doc["avatar"] = body.avatar
        async with self.uploads.attached(call, "avatar") as added:
            if added:
                doc["avatar"] = added[0]
            user = await self.store.users.create(doc)
        return self.session(user, 201)

    async def login(self, call: Call) -> Reply:
        body: LoginBody = call.body
        user = await self.store.users.by_email(body.email)
        matched = await self.passwords.check(body.password, user and user.get("password"))
        if user is None or not matched:
            raise Unauthorized(BAD_CREDENTIALS)
        if user.get("status", "Active") != "Active":
            raise Forbidden(f"Your account is {str(user.get('status')).lower()}")
        return self.session(user)

    async def forgot_password(self, call: Call) -> Reply:
        body: ForgotPasswordBody = call.body
        user = await self.store.users.by_email(body.email)
        if user is not None:
            token = new_reset_token()
            expires = now_utc(self.clock) + RESET_TOKEN_LIFETIME
            await self.store.users.update(
                user["_id"],
                {"resetPasswordToken": hash_reset_token(token), "resetPasswordExpire": expires},
            )
            self.mailer.send(
                user["email"],
                "Reset your CrackerShop password",
                "Use this token to reset your password within one hour: "
                f"{token}\n{self.public_url}/reset-password?token={token}\n",
            )
        return ok("If that email is registered, a reset link has been sent")

    async def reset_password(self, call: Call) -> Reply:
        body: ResetPasswordBody = call.body
        user = await self.store.users.by_reset_token(
            hash_reset_token(body.token), now_utc(self.clock)
        )
        if user is None:
            raise BadRequest("Invalid or expired reset token")
        updated = await self.store.users.update(
            user["_id"],
            {
                "password": await self.passwords.hash(body.password),
                "resetPasswordToken": None,
                "resetPasswordExpire": None,
            },
            inc={"tokenVersion": 1},
        )
        if updated is None:
            raise NotFound("User not found")
        return self.session(updated)

    async def me(self, call: Call) -> Reply:
        return ok(public_user(call.require_user()))

    async def update_details(self, call: Call) -> Reply:
        body: UpdateDetailsBody = call.body
        changes = body.model_dump(exclude_unset=True)
        user = call.require_user()
        async with self.uploads.attached(call, "avatar") as added:
            if added:
                changes["avatar"] = added[0]
            updated = await self.store.users.update(user["_id"], changes) if changes else user
            if updated is None:
                raise NotFound("User not found")
        await self.uploads.replaced([user.get("avatar")], [updated.get("avatar")])
        return ok(public_user(updated))

    async def change_password(self, call: Call) -> Reply:
        body: ChangePasswordBody = call.body
        user = call.require_user()
        if not await self.passwords.check(body.currentPassword, user.get("password")):
            raise Unauthorized("Current password is incorrect")
        updated = await self.store.users.update(
            user["_id"],
            {"password": await self.passwords.hash(body.newPassword)},
            inc={"tokenVersion": 1},
        )
        if updated is None:
            raise NotFound("User not found")
        return self.session(updated)

    async def add_address(self, call: Call) -> Reply:
        body: AddressBody = call.body
        user = call.require_user()
        addresses = list(user.get("addresses") or [])
        entry = {"_id": ObjectId(), **body.model_dump()}
        if entry["isDefault"] or not addresses:
            entry["isDefault"] = True
            addresses = [{**a, "isDefault": False} for a in addresses]
        addresses.append(entry)
        return await self._save_addresses(user, addresses, 201)

    async def default_address(self, call: Call) -> Reply:
        user = call.require_user()
        address_id = call.object_id("id", "Address")
        addresses = list(user.get("addresses") or [])
        if not any(a.get("_id") == address_id for a in addresses):
            raise NotFound("Address not found")
        addresses = [{**a, "isDefault": a.get("_id") == address_id} for a in addresses]
        return await self._save_addresses(user, addresses)

    async def delete_address(self, call: Call) -> Reply:
        user = call.require_user()
        address_id = call.object_id("id", "Address")
        addresses = list(user.get("addresses") or [])
        kept = [a for a in addresses if a.get("_id") != address_id]
        if len(kept) == len(addresses):
            raise NotFound("Address not found")
        if kept and not any(a.get("isDefault") for a in kept):
            kept[0] = {**kept[0], "isDefault": True}
        return await self._save_addresses(user, kept)

    async def _save_addresses(
        self, user: Mapping[str, Any], addresses: list[dict[str, Any]], status: int = 200
    ) -> Reply:
        updated = await self.store.users.update(user["_id"], {"addresses": addresses})
        if updated is None:
            raise NotFound("User not found")
        return ok(public_user(updated), status)
