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


def test_change_password_keeps_this_session_and_ends_the_others() -> None:
    """After a password change the token that made it still works (the app
    keeps it), every other session's token is refused, and a wrong current
    password is a 400 that ends nothing."""
    h = Harness()
    mine = h.register("d@example.com")
    _, login, _ = h.request(
        "POST", "/api/v1/auth/login", {"email": "d@example.com", "password": "password123"}
    )
    other = login["token"]
    code, body, _ = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {
            "currentPassword": "password123",
            "newPassword": "new-password-1",
            "confirmPassword": "new-password-1",
        },
        token=mine,
    )
    assert code == 200 and body["success"] is True
    assert h.request("GET", "/api/v1/auth/me", token=mine)[0] == 200
    assert h.request("GET", "/api/v1/auth/me", token=body["token"])[0] == 200
    assert h.request("GET", "/api/v1/auth/me", token=other)[0] == 401
    wrong = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {"currentPassword": "bad-guess", "newPassword": "another-pass"},
        token=mine,
    )
    assert wrong[0] == 400 and wrong[1]["error"] == "Current password is incorrect"
    assert h.request("GET", "/api/v1/auth/me", token=mine)[0] == 200
    # a second change from the same session keeps it too
    code, body, _ = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {"currentPassword": "new-password-1", "newPassword": "newer-password-2"},
        token=mine,
    )
    assert code == 200
    assert h.request("GET", "/api/v1/auth/me", token=mine)[0] == 200


def test_change_password_confirmation_must_match() -> None:
    """A confirmation that differs is a 400 that says so, and changes nothing."""
    h = Harness()
    token = h.register("d2@example.com")
    code, body, _ = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {
            "currentPassword": "password123",
            "newPassword": "new-password-1",
            "confirmPassword": "new-password-2",
        },
        token=token,
    )
    assert code == 400
    assert body["error"] == "Confirm password does not match the new password"
    assert (
        h.request(
            "POST", "/api/v1/auth/login", {"email": "d2@example.com", "password": "password123"}
        )[0]
        == 200
    )


def test_a_reset_ends_every_session() -> None:
    """A password reset through the mailed link revokes every token, the
    one kept by an earlier change included."""
    h = Harness()
    token = h.register("d3@example.com")
    h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {"currentPassword": "password123", "newPassword": "new-password-1"},
        token=token,
    )
    h.request("POST", "/api/v1/auth/forgotpassword", {"email": "d3@example.com"})
    reset = re.search(r"token=([0-9a-f]+)", h.mail.messages[0][2]).group(1)  # type: ignore[union-attr]
    code, _, _ = h.request(
        "POST", "/api/v1/auth/resetpassword", {"token": reset, "password": "brand-new-pass"}
    )
    assert code == 200
    assert h.request("GET", "/api/v1/auth/me", token=token)[0] == 401


def test_tokenless_reset_is_refused_with_the_way_to_reset() -> None:
    """The app's Forgot Password body (email and a new password, no token)
    is a 400 whose error points to the mailed link; the password stays."""
    h = Harness()
    h.register("d4@example.com")
    code, body, _ = h.request(
        "POST", "/api/v1/auth/resetpassword", {"email": "d4@example.com", "password": "hijacked!"}
    )
    assert code == 400 and body["code"] == "reset_token_required"
    assert "link" in body["error"] and "e-mail" in body["error"]
    assert (
        h.request(
            "POST", "/api/v1/auth/login", {"email": "d4@example.com", "password": "hijacked!"}
        )[0]
        == 401
    )


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
    assert code == 400 and body["details"] == {"role": "is not a field this request takes"}
    assert body["error"] == "Role is not a field this request takes"
    code, body, _ = h.request(
        "PUT", "/api/v1/auth/updatedetails", {"name": "Ganesh", "pincode": "600001"}, token=token
    )
    assert code == 200 and body["data"]["name"] == "Ganesh" and body["data"]["role"] == "customer"


def test_addresses() -> None:
    """Addresses can be added, made default and deleted, with one default at
    a time; every answer is the addresses array (the app stores it as
    ``user.addresses``)."""
    h = Harness()
    token = h.register("h@example.com")
    address = {
        "label": "Home",
        "address": "1 Main St",
        "pincode": "626123",
        "district": "Virudhunagar",
        "state": "Tamil Nadu",
    }
    code, body, _ = h.request("POST", "/api/v1/auth/addresses", address, token=token)
    assert code == 201 and body["data"][0]["isDefault"] is True
    assert set(body["data"][0]) == {"_id", *address, "isDefault"}
    code, body, _ = h.request(
        "POST", "/api/v1/auth/addresses", {**address, "label": "Work"}, token=token
    )
    first, second = body["data"]
    assert (first["isDefault"], second["isDefault"]) == (True, False)
    code, body, _ = h.request(
        "POST",
        "/api/v1/auth/addresses",
        {**address, "label": "Shop", "isDefault": True},
        token=token,
    )
    assert [a["isDefault"] for a in body["data"]] == [False, False, True]
    third = body["data"][2]
    code, body, _ = h.request("PUT", f"/api/v1/auth/addresses/{second['_id']}/default", token=token)
    assert [a["isDefault"] for a in body["data"]] == [False, True, False]
    code, body, _ = h.request("DELETE", f"/api/v1/auth/addresses/{second['_id']}", token=token)
    assert [(a["label"], a["isDefault"]) for a in body["data"]] == [("Home", True), ("Shop", False)]
    assert h.request("DELETE", f"/api/v1/auth/addresses/{second['_id']}", token=token)[0] == 404
    assert (
        h.request("PUT", f"/api/v1/auth/addresses/{second['_id']}/default", token=token)[0] == 404
    )
    assert h.request("DELETE", "/api/v1/auth/addresses/zzz", token=token)[0] == 404
    code, body, _ = h.request("GET", "/api/v1/auth/me", token=token)
    assert [a["_id"] for a in body["data"]["addresses"]] == [first["_id"], third["_id"]]


def test_saved_addresses_are_bounded() -> None:
    """A user keeps at most 20 saved addresses; the 21st is a 409."""
    h = Harness()
    token = h.register("h2@example.com")
    address = {"address": "1 Main St", "pincode": "626123", "district": "D", "state": "S"}
    for _ in range(20):
        assert h.request("POST", "/api/v1/auth/addresses", address, token=token)[0] == 201
    code, body, _ = h.request("POST", "/api/v1/auth/addresses", address, token=token)
    assert code == 409 and "at most 20" in body["error"]


def test_tokens_are_checked() -> None:
    """Missing, garbage, expired and forged tokens are 401."""
    h = Harness()
    token = h.register("i@example.com")
    assert h.request("GET", "/api/v1/auth/me")[0] == 401
    assert h.request("GET", "/api/v1/auth/me", token="garbage")[0] == 401
    assert h.request("GET", "/api/v1/auth/me", token=token[:-2] + "xx")[0] == 401
    h.clock.advance(3600 + 31)
    assert h.request("GET", "/api/v1/auth/me", token=token)[0] == 401
