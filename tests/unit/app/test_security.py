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


LIFETIME = 3600


def _signed(payload: dict[str, Any]) -> str:
    """A correctly signed token with any claims (PyJWT would refuse to encode NaN)."""
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64(payload)
    signature = hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def _raw_claims(raw: str) -> str:
    """A correctly signed token whose payload is ``raw`` JSON text as written."""
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "JWT"})
    body = base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
    signature = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


FORGED_TIMES = {
    "exp-1e308": lambda now: _signed({"id": "a" * 24, "iat": now, "exp": 1e308}),
    "exp-huge-int": lambda now: _signed({"id": "a" * 24, "iat": now, "exp": 10**400}),
    "lifetime-a-century": lambda now: _signed(
        {"id": "a" * 24, "iat": now, "exp": now + 100 * 365 * 86400}
    ),
    "lifetime-just-over": lambda now: _signed(
        {"id": "a" * 24, "iat": now, "exp": now + LIFETIME + 31}
    ),
    "iat-in-the-future": lambda now: _signed(
        {"id": "a" * 24, "iat": now + 3600, "exp": now + 3600 + LIFETIME}
    ),
    "iat-1e308": lambda now: _signed({"id": "a" * 24, "iat": 1e308, "exp": 1e308}),
    "iat-far-past-exp-far-future": lambda now: _signed(
        {"id": "a" * 24, "iat": -1e308, "exp": 1e308}
    ),
    "exp-before-iat": lambda now: _signed({"id": "a" * 24, "iat": now, "exp": now - 1}),
    "exp-infinity": lambda now: _raw_claims(f'{{"id": "{"a" * 24}", "iat": {now}, "exp": 1e999}}'),
    "exp-nan": lambda now: _raw_claims(f'{{"id": "{"a" * 24}", "iat": {now}, "exp": NaN}}'),
    "iat-nan": lambda now: _raw_claims(f'{{"id": "{"a" * 24}", "iat": NaN, "exp": {now + 60}}}'),
    "exp-true": lambda now: _signed({"id": "a" * 24, "iat": now, "exp": True}),
    "iat-string": lambda now: _signed({"id": "a" * 24, "iat": str(now), "exp": now + 60}),
    "iat-missing": lambda now: _signed({"id": "a" * 24, "exp": now + 60}),
}


@pytest.mark.parametrize("attack", sorted(FORGED_TIMES))
def test_absurd_times_are_refused_even_when_signed(attack: str) -> None:
    """A correctly signed token whose iat/exp are unbounded, in the future,
    inverted, infinite, NaN or not numbers is refused."""
    clock = _clock()
    token = FORGED_TIMES[attack](int(clock.seconds()))
    with pytest.raises(InvalidToken):
        Tokens(SECRET, LIFETIME, clock).verify(token)


def test_times_within_bounds_pass() -> None:
    """The full lifetime, a little skew within the leeway and float times all pass."""
    clock = _clock()
    tokens = Tokens(SECRET, LIFETIME, clock, leeway=30)
    now = int(clock.seconds())
    accepted = [
        {"iat": now, "exp": now + LIFETIME},  # the old backend's shape
        {"iat": now + 25, "exp": now + 25 + LIFETIME},  # issuer's clock a little ahead
        {"iat": now - LIFETIME - 20, "exp": now - 20},  # just expired, within the leeway
        {"iat": now + 0.5, "exp": now + 0.5 + LIFETIME + 29.5},
    ]
    for times in accepted:
        assert tokens.verify(_signed({"id": "a" * 24, **times}))["id"] == "a" * 24, times
    issued = tokens.issue("b" * 24)
    clock.advance(LIFETIME)
    assert tokens.verify(issued)["id"] == "b" * 24


def test_old_backend_thirty_day_token_verifies() -> None:
    """jsonwebtoken's {id, iat, exp} with expiresIn 30d passes under a 30-day JWT_EXPIRE,
    all through its life."""
    clock = _clock()
    now = int(clock.seconds())
    days30 = 30 * 86400
    token = jwt.encode({"id": "a" * 24, "iat": now, "exp": now + days30}, SECRET, "HS256")
    tokens = Tokens(SECRET, days30, clock)
    assert tokens.verify(token)["id"] == "a" * 24
    clock.advance(days30 - 1)
    assert tokens.verify(token)["id"] == "a" * 24
    clock.advance(31 + 30)
    with pytest.raises(InvalidToken):
        tokens.verify(token)
