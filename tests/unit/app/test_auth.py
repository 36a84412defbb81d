"""Auth routes over the in-memory store."""

from __future__ import annotations

import re

import bcrypt
from bson import ObjectId

from tests.unit.app.harness import Harness


def test_register_login_me() -> None:
    """A new account can log in and read itself; the hash never leaves."""
    h = Harness()
    h.register("Asha@Example.com")
    code, body, _ = h.request(
        "POST", "/api/v1/auth/login", {"email": "asha@example.com", "password": "password123"}
    )
    assert code == 200 and body["success"] is True
    code, me, _ = h.request("GET", "/api/v1/auth/me", token=body["token"])
    assert code == 200
    assert me["data"]["email"] == "asha@example.com"
    assert me["data"]["role"] == "customer"
    assert "password" not in me["data"] and "tokenVersion" not in me["data"]


def test_duplicate_email_is_409() -> None:
    """Emails are unique, whatever their case."""
    h = Harness()
    h.register("a@example.com")
    code, body, _ = h.request(
        "POST",
        "/api/v1/auth/register",
        {"name": "B", "email": "A@EXAMPLE.COM", "password": "password123"},
    )
    assert code == 409 and body["details"] == {"email": "already exists"}


def test_login_failures_look_the_same() -> None:
    """Unknown email and wrong password get the same 401."""
    h = Harness()
    h.register("a@example.com")
    wrong = h.request("POST", "/api/v1/auth/login", {"email": "a@example.com", "password": "nope"})
    unknown = h.request(
        "POST", "/api/v1/auth/login", {"email": "b@example.com", "password": "nope"}
    )
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1]


def test_bcryptjs_hash_from_the_old_backend_verifies() -> None:
    """A $2a$10$ hash (as bcryptjs wrote them) logs the user in."""
    h = Harness()
    hashed = bcrypt.hashpw(b"legacy-pass", bcrypt.gensalt(4, prefix=b"2a")).decode()
    assert hashed.startswith("$2a$")
    user_id = ObjectId()
    h.store.users.docs[user_id] = {
        "_id": user_id,
        "name": "Old",
        "email": "old@example.com",
        "password": hashed,
        "role": "customer",
        "__v": 0,
    }
    code, body, _ = h.request(
        "POST", "/api/v1/auth/login", {"email": "old@example.com", "password": "legacy-pass"}
    )
    assert code == 200, body
    assert "__v" not in body["data"]


def test_blocked_user_is_refused_at_once() -> None:
    """Blocking a user makes their existing token fail with 403."""
    h = Harness()
    admin = h.admin()
    token = h.register("c@example.com")
    _, me, _ = h.request("GET", "/api/v1/auth/me", token=token)
    code, _, _ = h.request(
        "PUT", f"/api/v1/users/{me['data']['_id']}", {"status": "Blocked"}, token=admin
    )
    assert code == 200
    code, body, _ = h.request("GET", "/api/v1/auth/me", token=token)
    assert code == 403 and body["code"] == "forbidden"
    code, _, _ = h.request(
        "POST", "/api/v1/auth/login", {"email": "c@example.com", "password": "password123"}
    )
    assert code == 403


def test_change_password_revokes_older_tokens() -> None:
    """After a password change the old token is refused and the new one works."""
    h = Harness()
    old = h.register("d@example.com")
    code, body, _ = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {"currentPassword": "password123", "newPassword": "new-password-1"},
        token=old,
    )
    assert code == 200
    assert h.request("GET", "/api/v1/auth/me", token=old)[0] == 401
    assert h.request("GET", "/api/v1/auth/me", token=body["token"])[0] == 200
    wrong = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {"currentPassword": "bad-guess", "newPassword": "another-pass"},
        token=body["token"],
    )
    assert wrong[0] == 401


def test_forgot_and_reset_password() -> None:
    """A reset token is mailed, works once, and the reply never tells if the email exists."""
    h = Harness()
    h.register("e@example.com")
    known = h.request("POST", "/api/v1/auth/forgotpassword", {"email": "e@example.com"})
    unknown = h.request("POST", "/api/v1/auth/forgotpassword", {"email": "x@example.com"})
    assert known[0] == unknown[0] == 200 and known[1] == unknown[1]
    assert len(h.mail.messages) == 1
    token = re.search(r"token=([0-9a-f]+)", h.mail.messages[0][2]).group(1)  # type: ignore[union-attr]
    stored = next(iter(h.store.users.docs.values()))
    assert stored["resetPasswordToken"] != token  # stored hashed
    code, _, _ = h.request(
        "POST", "/api/v1/auth/resetpassword", {"token": token, "password": "brand-new-pass"}
    )
    assert code == 200
    again = h.request(
        "POST", "/api/v1/auth/resetpassword", {"token": token, "password": "brand-new-pass"}
    )
    assert again[0] == 400
    assert (
        h.request(
            "POST", "/api/v1/auth/login", {"email": "e@example.com", "password": "brand-new-pass"}
        )[0]
        == 200
    )


def test_reset_token_expires_after_an_hour() -> None:
    """A reset token older than an hour is refused."""
    h = Harness()
    h.register("f@example.com")
    h.request("POST", "/api/v1/auth/forgotpassword", {"email": "f@example.com"})
    token = re.search(r"token=([0-9a-f]+)", h.mail.messages[0][2]).group(1)  # type: ignore[union-attr]
    h.clock.advance(3601)
    code, _, _ = h.request(
        "POST", "/api/v1/auth/resetpassword", {"token": token, "password": "brand-new-pass"}
    )
    assert code == 400


def test_updatedetails_cannot_touch_role_or_password() -> None:
    """updatedetails changes profile fields only; role is an unknown field (400)."""
    h = Harness()
    token = h.register("g@example.com")
    code, body, _ = h.request(
        "PUT", "/api/v1/auth/updatedetails", {"name": "Ganesh", "role": "admin"}, token=token
    )
    assert code == 400 and body["details"] == {"role": "Unknown field"}
    code, body, _ = h.request(
        "PUT", "/api/v1/auth/updatedetails", {"name": "Ganesh", "pincode": "600001"}, token=token
    )
    assert code == 200 and body["data"]["name"] == "Ganesh" and body["data"]["role"] == "customer"


def test_addresses() -> None:
    """Addresses can be added, made default and deleted, with one default at a time."""
    h = Harness()
    token = h.register("h@example.com")
    address = {
        "address": "1 Main St",
        "pincode": "626123",
        "district": "Virudhunagar",
        "state": "Tamil Nadu",
    }
    code, body, _ = h.request("POST", "/api/v1/auth/addresses", address, token=token)
    assert code == 201 and body["data"]["addresses"][0]["isDefault"] is True
    code, body, _ = h.request(
        "POST", "/api/v1/auth/addresses", {**address, "label": "Work"}, token=token
    )
    first, second = body["data"]["addresses"]
    assert (first["isDefault"], second["isDefault"]) == (True, False)
    code, body, _ = h.request("PUT", f"/api/v1/auth/addresses/{second['_id']}/default", token=token)
    assert [a["isDefault"] for a in body["data"]["addresses"]] == [False, True]
    code, body, _ = h.request("DELETE", f"/api/v1/auth/addresses/{second['_id']}", token=token)
    assert [a["isDefault"] for a in body["data"]["addresses"]] == [True]
    assert h.request("DELETE", f"/api/v1/auth/addresses/{second['_id']}", token=token)[0] == 404
    assert h.request("DELETE", "/api/v1/auth/addresses/zzz", token=token)[0] == 404


def test_tokens_are_checked() -> None:
    """Missing, garbage, expired and forged tokens are 401."""
    h = Harness()
    token = h.register("i@example.com")
    assert h.request("GET", "/api/v1/auth/me")[0] == 401
    assert h.request("GET", "/api/v1/auth/me", token="garbage")[0] == 401
    assert h.request("GET", "/api/v1/auth/me", token=token[:-2] + "xx")[0] == 401
    h.clock.advance(3600 + 31)
    assert h.request("GET", "/api/v1/auth/me", token=token)[0] == 401
