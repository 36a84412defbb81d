"""Tokens through the real server: forged and malformed tokens, old-backend
tokens, blocking, deletion and password changes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import Server, bearer, register, unique

SECRET = "integration-test-secret-0123456789abcdef"  # tests.support.Server's JWT_SECRET
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(uid: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"id": uid, "iat": now, "exp": now + 600, **extra}


def _hs256_with(key: bytes, claims: dict[str, Any]) -> str:
    """HS256 signed with an arbitrary key, bypassing PyJWT's PEM-as-secret guard."""
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64(claims)
    sig = hmac.new(key, head.encode(), hashlib.sha256).digest()
    return head + "." + _b64(sig)


ATTACKS: dict[str, Callable[[str], str]] = {
    "alg-none": lambda uid: _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims(uid)) + ".",
    "alg-None-signed": lambda uid: (
        _b64({"alg": "None"}) + "." + _b64(_claims(uid)) + "." + _b64(b"sig")
    ),
    "unsigned-two-parts": lambda uid: _b64({"alg": "HS256"}) + "." + _b64(_claims(uid)),
    "empty-signature": lambda uid: (
        jwt.encode(_claims(uid), SECRET, "HS256").rsplit(".", 1)[0] + "."
    ),
    "hs512": lambda uid: jwt.encode(_claims(uid), SECRET + "-" * 30, "HS512"),
    "rs256": lambda uid: jwt.encode(_claims(uid), RSA_KEY, "RS256"),
    "rs-hs-confusion": lambda uid: _hs256_with(RSA_PUBLIC, _claims(uid)),
    "other-secret": lambda uid: jwt.encode(_claims(uid), "x" * 40, "HS256"),
    "no-exp": lambda uid: jwt.encode({"id": uid, "iat": int(time.time())}, SECRET, "HS256"),
    "expired": lambda uid: jwt.encode(_claims(uid, exp=int(time.time()) - 3600), SECRET, "HS256"),
    "exp-as-string": lambda uid: jwt.encode(_claims(uid, exp="9999999999"), SECRET, "HS256"),
    "id-not-objectid": lambda uid: jwt.encode(_claims("../" + uid), SECRET, "HS256"),
    "id-as-object": lambda uid: jwt.encode(_claims({"$ne": None}), SECRET, "HS256"),  # type: ignore[arg-type]
    "tampered-payload": lambda uid: (
        jwt.encode(_claims(uid), SECRET, "HS256").split(".")[0]
        + "."
        + _b64(_claims(uid, role="admin"))
        + "."
        + jwt.encode(_claims(uid), SECRET, "HS256").split(".")[2]
    ),
    "garbage": lambda uid: "not.a.token",
    "not-ascii": lambda uid: "ey\u00e9.x.y",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_forged_and_malformed_tokens_are_401(server: Server, attack: str) -> None:
    """Each forged, unsigned, other-algorithm or malformed token is a JSON 401."""
    with server.client() as c:
        uid = register(c, unique("victim") + "@example.com")["data"]["_id"]
        token = ATTACKS[attack](uid)
        r = c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}".encode()})
        assert r.status_code == 401, (attack, r.text)
        assert r.json()["code"] == "unauthorized"
        assert "Traceback" not in r.text


def test_old_backend_token_keeps_working(server: Server) -> None:
    """A token as the old backend signed it ({id, iat, exp}, HS256, same secret) is accepted."""
    with server.client() as c:
        uid = register(c, unique("legacy") + "@example.com")["data"]["_id"]
        now = int(time.time())
        token = jwt.encode({"id": uid, "iat": now, "exp": now + 30 * 86400}, SECRET, "HS256")
        r = c.get("/api/v1/auth/me", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert r.json()["data"]["_id"] == uid


def test_blocking_deleting_and_password_change_revoke_tokens(server: Server, admin: str) -> None:
    """A blocked user is refused at once (403); a password change revokes the
    other sessions' tokens (401) but not the one that made it nor the new one;
    a deleted user's token is 401."""
    with server.client() as c:
        email = unique("revoked") + "@example.com"
        body = register(c, email)
        mine, uid = body["token"], body["data"]["_id"]
        login = c.post("/api/v1/auth/login", json={"email": email, "password": "password123"})
        old = login.json()["token"]
        r = c.put(
            "/api/v1/auth/change-password",
            json={"currentPassword": "password123", "newPassword": "password456"},
            headers=bearer(mine),
        )
        assert r.status_code == 200, r.text
        new = r.json()["token"]
        assert c.get("/api/v1/auth/me", headers=bearer(old)).status_code == 401
        assert c.get("/api/v1/auth/me", headers=bearer(mine)).status_code == 200
        assert c.get("/api/v1/auth/me", headers=bearer(new)).status_code == 200
        r = c.put(f"/api/v1/users/{uid}", json={"status": "Blocked"}, headers=bearer(admin))
        assert r.status_code == 200, r.text
        blocked = c.get("/api/v1/auth/me", headers=bearer(new))
        assert blocked.status_code == 403 and blocked.json()["code"] == "forbidden"
        assert c.delete(f"/api/v1/users/{uid}", headers=bearer(admin)).status_code == 200
        assert c.get("/api/v1/auth/me", headers=bearer(new)).status_code == 401
