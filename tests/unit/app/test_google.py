"""Google sign-in verifies the token before trusting any claim."""

from __future__ import annotations

import re
from typing import Any

import jwt
import pytest
from twisted.internet.defer import succeed

from crackershop.app import Dependencies, build_app
from crackershop.app.google import GoogleKeys
from crackershop.app.routing import resource
from tests.google_keys import CLIENT_ID, FakeGoogle
from tests.unit.app.harness import Harness


class GoogleHarness(Harness):
    def __init__(self, google: FakeGoogle, client_id: str = CLIENT_ID) -> None:
        super().__init__()
        self.fetches = 0

        def fetch(url: str) -> Any:
            self.fetches += 1
            return succeed((google.jwks(), "public, max-age=600"))

        from treq.testing import StubTreq

        deps = Dependencies(
            store=self.store,
            tokens=self.tokens,
            passwords=self.app_passwords,
            mailer=self.mail,
            clock=self.clock,  # type: ignore[arg-type]
            google_client_id=client_id,
            google_keys=GoogleKeys("https://keys.test/certs", fetch, self.clock),
        )
        self.app = build_app(deps)
        self.treq = StubTreq(resource(self.app))


def sign_in(h: Harness, token: str) -> tuple[int, dict]:
    code, body, _ = h.request("POST", "/api/v1/auth/google", {"idToken": token})
    return code, body


def test_first_sign_in_creates_the_account_then_logs_in() -> None:
    """A valid token creates a customer once; the next sign-in finds it; keys are cached."""
    google = FakeGoogle()
    h = GoogleHarness(google)
    code, body = sign_in(h, google.token(now=h.clock.seconds()))
    assert code == 201 and body["data"]["email"] == "ravi@gmail.com" and body["token"]
    code, again = sign_in(h, google.token(now=h.clock.seconds()))
    assert code == 200 and again["data"]["_id"] == body["data"]["_id"]
    assert h.fetches == 1
    me = h.request("GET", "/api/v1/auth/me", token=again["token"])
    assert me[0] == 200


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"exp": 1}, "expired"),
        ({"email_verified": False}, "unverified email"),
        ({"email_verified": None}, "no verification claim"),
    ],
)
def test_bad_claims_are_refused(claims: dict, why: str) -> None:
    """Wrong audience or issuer, expiry and unverified emails are 401."""
    google = FakeGoogle()
    h = GoogleHarness(google)
    code, _body = sign_in(h, google.token(now=h.clock.seconds(), **claims))
    assert code == 401, why
    assert h.store.users.docs == {}


def test_forged_and_unsigned_tokens_are_refused() -> None:
    """A token signed by another key, an HS256 token, and alg=none are all 401."""
    google, impostor = FakeGoogle(), FakeGoogle()
    h = GoogleHarness(google)
    assert sign_in(h, impostor.token(now=h.clock.seconds()))[0] == 401
    hs = jwt.encode(
        {"sub": "1", "aud": CLIENT_ID},
        "secret-" * 8,
        algorithm="HS256",
        headers={"kid": google.kid},
    )
    assert sign_in(h, hs)[0] == 401
    assert sign_in(h, "not.a.token")[0] == 401
    assert h.store.users.docs == {}


def test_not_configured_is_501() -> None:
    """Without GOOGLE_CLIENT_ID the route answers 501."""
    h = Harness()
    code, body, _ = h.request("POST", "/api/v1/auth/google", {"idToken": "x"})
    assert code == 501 and body["code"] == "not_implemented"


def test_google_never_merges_into_an_unproven_password_account() -> None:
    """Someone registers the victim's email with their own password; the
    victim's Google sign-in is a 409 telling them to sign in with the
    password, and the squatter's account gains nothing."""
    google = FakeGoogle()
    h = GoogleHarness(google)
    squatter = h.register("ravi@gmail.com", password="squatter-pass")
    code, body = sign_in(h, google.token(now=h.clock.seconds()))
    assert code == 409 and body["code"] == "account_exists"
    assert "sign in with its password" in body["error"]
    _, me, _ = h.request("GET", "/api/v1/auth/me", token=squatter)
    assert "googleId" not in me["data"]


def test_a_proven_email_links_google_sign_in() -> None:
    """Once the owner proves the email (a reset through the mailed link),
    Google sign-in links to the account, and the squatter's password and
    sessions are gone."""
    google = FakeGoogle()
    h = GoogleHarness(google)
    squatter = h.register("ravi@gmail.com", password="squatter-pass")
    h.request("POST", "/api/v1/auth/forgotpassword", {"email": "ravi@gmail.com"})

    token = re.search(r"token=([0-9a-f]+)", h.mail.messages[0][2]).group(1)  # type: ignore[union-attr]
    code, _, _ = h.request(
        "POST", "/api/v1/auth/resetpassword", {"token": token, "password": "owners-pass"}
    )
    assert code == 200
    code, body = sign_in(h, google.token(now=h.clock.seconds()))
    assert code == 200 and body["data"]["email"] == "ravi@gmail.com"
    assert h.request("GET", "/api/v1/auth/me", token=squatter)[0] == 401
    login = {"email": "ravi@gmail.com", "password": "squatter-pass"}
    assert h.request("POST", "/api/v1/auth/login", login)[0] == 401


def test_a_google_account_gets_a_password_only_by_the_mailed_link() -> None:
    """An account made by Google sign-in cannot be registered again, nor
    given a password by change-password; the reset link works."""
    google = FakeGoogle()
    h = GoogleHarness(google)
    code, body = sign_in(h, google.token(now=h.clock.seconds()))
    assert code == 201
    session = body["token"]
    again = h.request(
        "POST",
        "/api/v1/auth/register",
        {"name": "Squatter", "email": "ravi@gmail.com", "password": "squatter-pass"},
    )
    assert again[0] == 409
    code, _, _ = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {"currentPassword": "anything-1", "newPassword": "chosen-pass"},
        token=session,
    )
    assert code == 400
    h.request("POST", "/api/v1/auth/forgotpassword", {"email": "ravi@gmail.com"})

    token = re.search(r"token=([0-9a-f]+)", h.mail.messages[0][2]).group(1)  # type: ignore[union-attr]
    h.request("POST", "/api/v1/auth/resetpassword", {"token": token, "password": "chosen-pass"})
    login = {"email": "ravi@gmail.com", "password": "chosen-pass"}
    assert h.request("POST", "/api/v1/auth/login", login)[0] == 200
