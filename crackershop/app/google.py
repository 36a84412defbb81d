"""Google sign-in: ``POST /api/v1/auth/google {idToken}``.

The ID token is verified properly before any claim is used: RS256 signature
against Google's published keys (fetched, cached for as long as Google's
Cache-Control says, refetched once for an unknown key id), audience equal to
GOOGLE_CLIENT_ID, Google's issuer, expiry, and a verified email.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Mapping
from typing import Any, Callable, Optional

import jwt
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from crackershop.app.models import GoogleBody
from crackershop.app.responses import Session
from crackershop.app.routing import Call, Reply, Route
from crackershop.errors import (
    Conflict,
    Forbidden,
    NotImplementedFeature,
    ServiceUnavailable,
    Unauthorized,
)
from crackershop.store.interfaces import IStore

log = Logger()
ISSUERS = ("accounts.google.com", "https://accounts.google.com")
DEFAULT_LIFETIME = 3600.0
REFETCH_AT_MOST_EVERY = 60.0
LEEWAY = 30.0


class AccountExists(Conflict):
    code = "account_exists"


# fetch(url) -> (body, Cache-Control header or None)
Fetch = Callable[[str], Awaitable[tuple[bytes, Optional[str]]]]


class GoogleKeys:
    """Google's signing keys, cached."""

    def __init__(self, url: str, fetch: Fetch, clock: IReactorTime) -> None:
        self.url = url
        self.fetch = fetch
        self.clock = clock
        self.keys: dict[str, Any] = {}
        self.expires = 0.0
        self.fetched = -REFETCH_AT_MOST_EVERY

    async def key(self, kid: str) -> Any:
        now = self.clock.seconds()
        stale = now >= self.expires
        unknown = kid not in self.keys and now - self.fetched >= REFETCH_AT_MOST_EVERY
        if stale or unknown:
            await self._refresh()
        if kid not in self.keys:
            raise Unauthorized("Google token was signed by an unknown key")
        return self.keys[kid]

    async def _refresh(self) -> None:
        try:
            body, cache_control = await self.fetch(self.url)
            keys = jwt.PyJWKSet.from_dict(json.loads(body))
        except Exception as e:
            if not self.keys:
                log.warn("cannot fetch Google's keys: {error}", error=str(e))
                raise ServiceUnavailable("Google sign-in is unavailable, try again soon") from None
            return  # keep using the keys we have
        now = self.clock.seconds()
        self.keys = {k.key_id: k.key for k in keys.keys if k.key_id}
        self.fetched = now
        match = re.search(r"max-age=(\d+)", cache_control or "")
        self.expires = now + (float(match.group(1)) if match else DEFAULT_LIFETIME)


class GoogleSignIn:
    def __init__(
        self,
        store: IStore,
        keys: Optional[GoogleKeys],
        client_id: str,
        clock: IReactorTime,
        session: Callable[[Mapping[str, Any], int], Reply],
    ) -> None:
        self.store = store
        self.keys = keys
        self.client_id = client_id
        self.clock = clock
        self.session = session

    def routes(self) -> list[Route]:
        return [
            Route(
                "POST",
                "/api/v1/auth/google",
                self.sign_in,
                "Sign in with a Google ID token",
                operation="googleSignIn",
                body=GoogleBody,
                response=Session,
                success=(200, 201),
                tag="auth",
                statuses=(401, 403, 501),
                rate="auth",
            )
        ]

    async def verify(self, token: str) -> dict[str, Any]:
        assert self.keys is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("Invalid Google token") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise Unauthorized("Invalid Google token")
        key = await self.keys.key(header["kid"])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=ISSUERS,
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub"],
                    # Time is checked below against the injected clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise Unauthorized("Invalid Google token") from None
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp + LEEWAY < self.clock.seconds():
            raise Unauthorized("Google token has expired")
        if claims.get("email_verified") is not True or not isinstance(claims.get("email"), str):
            raise Unauthorized("Google account email is not verified")
        return claims

    async def sign_in(self, call: Call) -> Reply:
        if not self.client_id or self.keys is None:
            raise NotImplementedFeature("Google sign-in is not configured on this server")
        claims = await self.verify(call.body.idToken)
        email = claims["email"].strip().lower()
        user = await self.store.users.by_email(email)
        status = 200
        if user is None:
            user = await self.store.users.create(
                {
                    "name": str(claims.get("name") or email.split("@")[0])[:100],
                    "email": email,
                    "googleId": claims["sub"],
                    "avatar": claims.get("picture"),
                    "role": "customer",
                    "status": "Active",
                    "addresses": [],
                }
            )
            status = 201
        elif user.get("googleId") not in (None, claims["sub"]):
            raise Unauthorized("This email is linked to another Google account")
        elif user.get("googleId") is None:
            if user.get("password") and user.get("emailVerified") is not True:
                # Whoever registered this email with a password never proved
                # it was theirs: linking would hand them the Google user's
                # account (and the Google user theirs).
                raise AccountExists(
                    "An account with this email already exists: sign in with its password "
                    "first (use Forgot password if you do not know it)",
                    {"email": "has a password account"},
                )
            linked = await self.store.users.update(user["_id"], {"googleId": claims["sub"]})
            user = linked or user
        if user.get("status", "Active") != "Active":
            raise Forbidden(f"Your account is {str(user.get('status')).lower()}")
        return self.session(user, status)


def treq_fetch(reactor: Any, timeout: float = 10.0) -> Fetch:
    """Fetch with treq (the production HTTP client)."""
    import treq

    async def fetch(url: str) -> tuple[bytes, Optional[str]]:
        response = await treq.get(url, timeout=timeout, reactor=reactor)
        if response.code != 200:
            raise OSError(f"HTTP {response.code}")
        body: bytes = await response.content()
        headers = response.headers.getRawHeaders("cache-control")
        return body, headers[0] if headers else None

    return fetch
