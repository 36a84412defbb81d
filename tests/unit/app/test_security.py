"""JWTs: the old backend's tokens work; forged and unsigned ones never do."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from crackershop.app.security import InvalidToken, Passwords, Tokens
from tests.unit.app.harness import SECRET, run_now

successResultOf = SynchronousTestCase().successResultOf


def _clock() -> Clock:
    clock = Clock()
    clock.advance(1_800_000_000)
    return clock


def test_old_backend_token_verifies() -> None:
    """A token signed by jsonwebtoken with {id, iat, exp} is accepted."""
    clock = _clock()
    now = int(clock.seconds())
    token = jwt.encode({"id": "a" * 24, "iat": now, "exp": now + 60}, SECRET, algorithm="HS256")
    assert Tokens(SECRET, 60, clock).verify(token)["id"] == "a" * 24


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "make",
    [
        lambda now: (
            _b64({"alg": "none", "typ": "JWT"})
            + "."
            + _b64({"id": "a" * 24, "iat": now, "exp": now + 60})
            + "."
        ),
        lambda now: jwt.encode(
            {"id": "a" * 24, "iat": now, "exp": now + 60}, SECRET, algorithm="HS384"
        ),
        lambda now: jwt.encode({"id": "a" * 24, "iat": now}, SECRET, algorithm="HS256"),
        lambda now: jwt.encode(
            {"id": "a" * 24, "iat": now, "exp": now + 60}, "x" * 40, algorithm="HS256"
        ),
        lambda now: jwt.encode({"iat": now, "exp": now + 60}, SECRET, algorithm="HS256"),
        lambda now: jwt.encode(
            {"id": "a" * 24, "iat": now, "exp": now - 120}, SECRET, algorithm="HS256"
        ),
    ],
    ids=["alg-none", "hs384", "no-exp", "other-secret", "no-id", "expired"],
)
def test_bad_tokens_are_refused(make: object) -> None:
    """Unsigned, other-algorithm, exp-less, forged, subject-less and expired tokens fail."""
    clock = _clock()
    with pytest.raises(InvalidToken):
        Tokens(SECRET, 60, clock).verify(make(int(clock.seconds())))  # type: ignore[operator]


def _now(coroutine: Any) -> Any:
    return successResultOf(Deferred.fromCoroutine(coroutine))


def test_password_check() -> None:
    """bcrypt verifies the right password only, and tolerates a missing hash."""
    passwords = Passwords(4, run_now)
    hashed = _now(passwords.hash("correct horse"))
    assert _now(passwords.check("correct horse", hashed)) is True
    assert _now(passwords.check("wrong", hashed)) is False
    assert _now(passwords.check("anything", None)) is False
