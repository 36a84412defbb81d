"""Tokens and passwords.

Tokens are the old backend's JWTs (HS256, payload ``{id, iat, exp}``) so its
clients' tokens keep working, plus ``tv``: the user's token version, bumped
when the password changes, which revokes every token issued before (but the
one that made the change, recognised by its digest), and ``jti``, which
makes each session's token its own.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Callable, Optional, TypeVar

import bcrypt
import jwt
from twisted.internet.interfaces import IReactorTime

T = TypeVar("T")
ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of another algorithm."""


class Tokens:
    def __init__(
        self, secret: str, lifetime: float, clock: IReactorTime, leeway: float = 30.0
    ) -> None:
        self._secret = secret
        self.lifetime = lifetime
        self.clock = clock
        self.leeway = leeway

    def issue(self, user_id: str, token_version: int = 0) -> str:
        now = int(self.clock.seconds())
        # jti: two logins in the same second are still two sessions (a
        # password change keeps only the one that made it)
        payload: dict[str, Any] = {
            "id": user_id,
            "iat": now,
            "exp": now + int(self.lifetime),
            "jti": secrets.token_urlsafe(9),
        }
        if token_version:
            payload["tv"] = token_version
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a valid token; InvalidToken otherwise.

        The algorithm is pinned, so ``none`` and RS/HS confusion are refused,
        and ``exp`` is required. Time comes from the injected clock.
        """
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as e:
            raise InvalidToken(str(e)) from None
        exp = payload.get("exp")
        if not isinstance(exp, (int, float)) or exp + self.leeway < self.clock.seconds():
            raise InvalidToken("expired")
        if not isinstance(payload.get("id"), str):
            raise InvalidToken("no subject")
        tv = payload.get("tv", 0)
        if not isinstance(tv, int):
            raise InvalidToken("bad token version")
        return payload


def token_digest(token: str) -> str:
    """What the server keeps of a session token it must recognise later."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def hash_reset_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_reset_token() -> str:
    return secrets.token_hex(32)


Runner = Callable[..., Any]


class Passwords:
    """bcrypt, always computed off the reactor thread by ``run``.

    ``run`` is ``deferToThread`` in production; tests inject a synchronous
    runner. Hashes made by bcryptjs (``$2a$``) verify as they are.
    """

    def __init__(self, rounds: int, run: Runner) -> None:
        self.rounds = rounds
        self._run = run
        # Checked against when the email is unknown, so that a login takes
        # the same time whether or not the account exists.
        self._decoy = bcrypt.hashpw(b"decoy-password", bcrypt.gensalt(rounds)).decode("ascii")

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        hashed: bytes = await self._run(bcrypt.hashpw, password.encode("utf-8"), salt)
        return hashed.decode("ascii")

    async def check(self, password: str, hashed: Optional[str]) -> bool:
        target = hashed if isinstance(hashed, str) and hashed.startswith("$2") else self._decoy
        try:
            matched: bool = await self._run(
                bcrypt.checkpw, password.encode("utf-8"), target.encode("ascii")
            )
        except ValueError:
            return False
        return matched and target is not self._decoy
