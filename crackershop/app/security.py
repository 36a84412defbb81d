"""Tokens and passwords.

Tokens are the old backend's JWTs (HS256, payload ``{id, iat, exp}``) so its
clients' tokens keep working, plus ``tv``: the user's token version, bumped
when the password changes, which revokes every token issued before (but the
one that made the change, recognised by its digest), and ``jti``, which
makes each session's token its own.

A token's times are bounded as well as signed: ``iat`` is not in the
future, ``exp`` is no later than ``iat`` plus the configured lifetime, both
within the leeway and both finite numbers. So no token, however it came to
be signed, lives longer than this server would issue one for: a token that
claims to live for ever (``exp: 1e308``) is refused. The old backend's
tokens (``exp - iat`` equal to the lifetime) pass.
"""

from __future__ import annotations

import hashlib
import math
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

        The algorithm is pinned, so ``none`` and RS/HS confusion are refused;
        ``iat`` and ``exp`` are required and bounded. Time comes from the
        injected clock.
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
        self._check_times(payload.get("iat"), payload.get("exp"))
        if not isinstance(payload.get("id"), str):
            raise InvalidToken("no subject")
        tv = payload.get("tv", 0)
        if not isinstance(tv, int):
            raise InvalidToken("bad token version")
        return payload

    def _check_times(self, iat: Any, exp: Any) -> None:
        if not (_finite(iat) and _finite(exp)):
            raise InvalidToken("iat and exp must be finite numbers")
        now = self.clock.seconds()
        if iat > now + self.leeway:
            raise InvalidToken("issued in the future")
        if exp < iat or exp - iat > self.lifetime + self.leeway:
            raise InvalidToken("lifetime out of bounds")
        if exp + self.leeway < now:
            raise InvalidToken("expired")


def _finite(value: Any) -> bool:
    """A JSON number that is not NaN or infinite (a bool is not a number)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


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
