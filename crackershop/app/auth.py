"""/api/v1/auth, and who the caller of a request is."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Optional

from bson import ObjectId
from bson.errors import InvalidId
from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest

from crackershop.app.mail import IMailer
from crackershop.app.models import (
    AddressBody,
    ChangePasswordBody,
    ForgotPasswordBody,
    LoginBody,
    RegisterBody,
    ResetPasswordBody,
    UpdateDetailsBody,
)
from crackershop.app.responses import Address, Session, Success, User
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.app.security import (
    InvalidToken,
    Passwords,
    Tokens,
    hash_reset_token,
    new_reset_token,
    token_digest,
)
from crackershop.app.uploads import Uploads, ref
from crackershop.app.usercache import UserCache
from crackershop.app.views import public_user
from crackershop.clock import now_utc
from crackershop.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from crackershop.store.interfaces import IStore

RESET_TOKEN_LIFETIME = timedelta(hours=1)
MAX_ADDRESSES = 20
BAD_CREDENTIALS = "Invalid email or password"


class ResetLinkRequired(BadRequest):
    code = "reset_token_required"


def bearer_token(request: IRequest) -> Optional[str]:
    """The request's bearer token, or None."""
    header = request.getHeader(b"authorization") or b""
    scheme, _, token = header.partition(b" ")
    try:
        text = token.strip().decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if scheme.lower() == b"bearer" and text else None


def current_session(payload: Mapping[str, Any], user: Mapping[str, Any], token: str) -> bool:
    """Whether a token still opens the account: issued at the account's
    current token version, or the one session that changed the password
    last (the app keeps using its token after a change)."""
    if payload.get("tv", 0) == user.get("tokenVersion", 0):
        return True
    kept = user.get("keptToken")
    return isinstance(kept, str) and hmac.compare_digest(kept, token_digest(token))


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
        token = bearer_token(request)
        if token is None:
            if required:
                raise Unauthorized("Not authorized to access this route")
            return None
        try:
            payload = self.tokens.verify(token)
            user_id = ObjectId(payload["id"])
        except (InvalidToken, InvalidId):
            if required:
                raise Unauthorized("Not authorized, token is invalid or expired") from None
            return None
        if self.users is not None:
            user = await self.users.get(user_id)
        else:
            user = await self.store.users.get(user_id)
        if user is None or not current_session(payload, user, token):
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
        addresses = Success[list[Address]]
        return [
            Route(
                "POST",
                f"{p}/register",
                self.register,
                "Create an account (JSON or multipart with an avatar)",
                operation="register",
                body=RegisterBody,
                files={"avatar": 1},
                response=Session,
                success=(201,),
                tag="auth",
                # an avatar URL of an image someone else uploaded
                statuses=(403,),
                rate="auth",
            ),
            Route(
                "POST",
                f"{p}/login",
                self.login,
                "Log in",
                operation="login",
                body=LoginBody,
                response=Session,
                tag="auth",
                statuses=(401, 403),
                rate="auth",
            ),
            Route(
                "POST",
                f"{p}/forgotpassword",
                self.forgot_password,
                "Ask for a password reset",
                operation="forgotPassword",
                body=ForgotPasswordBody,
                response=Success[str],
                tag="auth",
                rate="auth",
            ),
            Route(
                "POST",
                f"{p}/resetpassword",
                self.reset_password,
                "Set a new password with a reset token",
                operation="resetPassword",
                body=ResetPasswordBody,
                response=Session,
                tag="auth",
                rate="auth",
            ),
            Route(
                "GET",
                f"{p}/me",
                self.me,
                "The caller's account",
                operation="getMe",
                access="user",
                response=Success[User],
                tag="auth",
            ),
            Route(
                "PUT",
                f"{p}/updatedetails",
                self.update_details,
                "Update name, mobile number, address and avatar",
                operation="updateDetails",
                access="user",
                body=UpdateDetailsBody,
                files={"avatar": 1},
                response=Success[User],
                tag="auth",
            ),
            Route(
                "PUT",
                f"{p}/change-password",
                self.change_password,
                "Change the password; older tokens stop working",
                operation="changePassword",
                access="user",
                body=ChangePasswordBody,
                response=Session,
                tag="auth",
                rate="auth",
            ),
            Route(
                "POST",
                f"{p}/addresses",
                self.add_address,
                "Add a saved address",
                operation="addAddress",
                access="user",
                body=AddressBody,
                response=addresses,
                success=(201,),
                tag="auth",
            ),
            Route(
                "PUT",
                f"{p}/addresses/{{id}}/default",
                self.default_address,
                "Make a saved address the default",
                operation="setDefaultAddress",
                access="user",
                response=addresses,
                tag="auth",
            ),
            Route(
                "DELETE",
                f"{p}/addresses/{{id}}",
                self.delete_address,
                "Delete a saved address",
                operation="deleteAddress",
                access="user",
                response=addresses,
                tag="auth",
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
        for name in ("mobileNumber", "address", "pincode", "district", "state", "avatar"):
            value = getattr(body, name)
            if value:
                doc[name] = value
        doc["_id"] = ObjectId()
        async with self.uploads.single(
            call, "avatar", ref("user", doc["_id"]), doc, owner=doc["_id"], own_only=True
        ):
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
        if body.token is None:
            # the app's Forgot Password screen: a new password for an email,
            # which would let anyone take over any account
            raise ResetLinkRequired(
                "For your security a password can only be reset from the link we e-mail: "
                "use Forgot password, then open the link in the e-mail",
                {"token": "is required: it is in the link sent by e-mail"},
            )
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
                "keptToken": None,
                # the link came through this address: it is the user's
                "emailVerified": True,
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
        # an avatar is an image the user uploaded, or an external https one
        async with self.uploads.single(
            call,
            "avatar",
            ref("user", user["_id"]),
            changes,
            current=user.get("avatar"),
            owner=user["_id"],
            own_only=True,
        ):
            updated = await self.store.users.update(user["_id"], changes) if changes else user
            if updated is None:
                raise NotFound("User not found")
        return ok(public_user(updated))

    async def change_password(self, call: Call) -> Reply:
        body: ChangePasswordBody = call.body
        user = call.require_user()
        if not await self.passwords.check(body.currentPassword, user.get("password")):
            # a 400: the app drops its session on any 401
            raise ValidationFailed(
                "Current password is incorrect", {"currentPassword": "is incorrect"}
            )
        token = bearer_token(call.request)
        assert token is not None, "an authenticated call has a token"
        # every other session ends; the one making the change goes on
        updated = await self.store.users.update(
            user["_id"],
            {
                "password": await self.passwords.hash(body.newPassword),
                "keptToken": token_digest(token),
            },
            inc={"tokenVersion": 1},
        )
        if updated is None:
            raise NotFound("User not found")
        return self.session(updated)

    async def add_address(self, call: Call) -> Reply:
        body: AddressBody = call.body
        user = call.require_user()
        entry = {"_id": ObjectId(), **body.model_dump()}
        updated = await self.store.users.add_address(user["_id"], entry, MAX_ADDRESSES)
        if updated is None:
            if await self.store.users.get(user["_id"]) is None:
                raise NotFound("User not found")
            raise Conflict(
                f"You can keep at most {MAX_ADDRESSES} saved addresses; delete one first",
                {"addresses": f"at most {MAX_ADDRESSES}"},
            )
        return self._addresses(updated, 201)

    async def default_address(self, call: Call) -> Reply:
        address_id = call.object_id("id", "Address")
        updated = await self.store.users.set_default_address(call.require_user()["_id"], address_id)
        if updated is None:
            raise NotFound("Address not found")
        return self._addresses(updated)

    async def delete_address(self, call: Call) -> Reply:
        address_id = call.object_id("id", "Address")
        updated = await self.store.users.remove_address(call.require_user()["_id"], address_id)
        if updated is None:
            raise NotFound("Address not found")
        return self._addresses(updated)

    @staticmethod
    def _addresses(user: Mapping[str, Any], status: int = 200) -> Reply:
        """The app stores ``data`` as the user's ``addresses``."""
        return ok(public_user(user)["addresses"], status)
