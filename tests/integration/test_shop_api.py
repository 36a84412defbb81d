"""The shop API through the real ``twistd -n crackershop`` and its embedded
database: every route of the contract, and every kind of bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import Server, bearer, register, unique


def test_service_routes(server: Server) -> None:
    """/health, /ready, /api and /openapi.json answer as the contract says."""
    with server.client() as c:
        health = c.get("/health").json()
        assert health["success"] and health["message"] == "Server is running"
        assert health["environment"] == "development"
        assert c.get("/ready").json()["checks"] == {"mongodb": "ok"}
        api = c.get("/api").json()
        assert api["message"] == "Welcome to CrackerShop API" and api["version"]
        doc = c.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.1")
        assert "post" in doc["paths"]["/api/v1/auth/register"]
        assert "delete" in doc["paths"]["/api/v1/products/{id}"]


def test_register_login_me(server: Server) -> None:
    """register -> login -> me, with the password hash never returned."""
    email = unique("asha") + "@example.com"
    with server.client() as c:
        register(c, email.upper())
        r = c.post("/api/v1/auth/login", json={"email": email, "password": "password123"})
        assert r.status_code == 200
        me = c.get("/api/v1/auth/me", headers=bearer(r.json()["token"])).json()["data"]
        assert me["email"] == email and "password" not in me
        assert re.fullmatch(r"[0-9a-f]{24}", me["_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", me["createdAt"])
        again = c.post(
            "/api/v1/auth/register", json={"name": "X", "email": email, "password": "password123"}
        )
        assert again.status_code == 409


def test_password_reset_through_the_outbox(server: Server) -> None:
    """forgotpassword writes a mail with a token that resets the password once."""
    email = unique("reset") + "@example.com"
    with server.client() as c:
        register(c, email)
        r = c.post("/api/v1/auth/forgotpassword", json={"email": email})
        assert r.status_code == 200
        mails = [json.loads(p.read_text()) for p in (server.workdir / "outbox").glob("*.json")]
        mail = next(m for m in mails if m["to"] == email)
        token = re.search(r"token=([0-9a-f]+)", mail["text"]).group(1)  # type: ignore[union-attr]
        r = c.post("/api/v1/auth/resetpassword", json={"token": token, "password": "reset-pass-9"})
        assert r.status_code == 200
        assert (
            c.post(
                "/api/v1/auth/login", json={"email": email, "password": "reset-pass-9"}
            ).status_code
            == 200
        )


def test_catalogue_admin_and_customer(server: Server, admin: str) -> None:
    """An admin builds a category with products; a customer lists, filters, searches."""
    with server.client() as c:
        name = unique("Cat")
        r = c.post("/api/v1/categories", json={"name": name}, headers=bearer(admin))
        assert r.status_code == 201, r.text
        cat = r.json()["data"]["_id"]
        made = []
        for i in range(12):
            r = c.post(
                "/api/v1/products",
                json={
                    "name": f"{name} item {i:02d}",
                    "price": 10 + i,
                    "category": cat,
                    "quantity": 5,
                    "isDiwaliSpecial": i % 3 == 0,
                    "description": f"special [{name}] stock",
                },
                headers=bearer(admin),
            )
            assert r.status_code == 201, r.text
            made.append(r.json()["data"])
        customer = register(c, unique("cust") + "@example.com")["token"]
        page = c.get(
            "/api/v1/products",
            params={"category": cat, "limit": 5, "page": 3, "sortBy": "price"},
            headers=bearer(customer),
        ).json()
        assert (page["total"], page["pages"], page["count"], page["currentPage"]) == (12, 3, 2, 3)
        assert [p["price"] for p in page["data"]] == [20, 21]
        assert page["data"][0]["category"] == {"_id": cat, "name": name}
        diwali = c.get(
            "/api/v1/products", params={"category": cat, "diwaliSpecial": "true", "limit": 100}
        ).json()
        assert diwali["total"] == 4
        priced = c.get(
            "/api/v1/products", params={"category": cat, "minPrice": 15, "maxPrice": 17}
        ).json()
        assert sorted(p["price"] for p in priced["data"]) == [15, 16, 17]
        found = c.get("/api/v1/products/search/query", params={"q": f"[{name}]"}).json()
        assert found["total"] == 12
        assert c.get("/api/v1/products/search/query", params={"q": ".*("}).json()["total"] == 0
        one = c.get(f"/api/v1/products/{made[0]['_id']}").json()["data"]
        assert one["name"] == made[0]["name"]
        assert c.delete(f"/api/v1/categories/{cat}", headers=bearer(admin)).status_code == 409
        r = c.post("/api/v1/categories", json={"name": name}, headers=bearer(admin))
        assert r.status_code == 409


def test_admin_users_routes(server: Server, admin: str) -> None:
    """Admins list, read, block and delete users; blocking stops tokens at once."""
    with server.client() as c:
        victim = register(c, unique("block") + "@example.com")
        uid, token = victim["data"]["_id"], victim["token"]
        listing = c.get("/api/v1/users", params={"limit": 2}, headers=bearer(admin)).json()
        assert listing["count"] == 2 and listing["total"] >= 2
        assert c.get(f"/api/v1/users/{uid}", headers=bearer(admin)).json()["data"]["_id"] == uid
        r = c.put(f"/api/v1/users/{uid}", json={"status": "Blocked"}, headers=bearer(admin))
        assert r.status_code == 200
        assert c.get("/api/v1/auth/me", headers=bearer(token)).status_code == 403
        assert c.delete(f"/api/v1/users/{uid}", headers=bearer(admin)).status_code == 200
        assert c.get(f"/api/v1/users/{uid}", headers=bearer(admin)).status_code == 404


def test_every_admin_route_refuses_a_customer(server: Server) -> None:
    """Each admin route in /openapi.json (x-access: admin) answers 403 to a
    customer and 401 to nobody, and the document lists every admin route."""
    with server.client() as c:
        customer = register(c, unique("nosy") + "@example.com")["token"]
        doc = c.get("/openapi.json").json()
        checked = 0
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                if op["x-access"] != "admin":
                    continue
                assert "403" in op["responses"] and "401" in op["responses"], (method, path)
                url = re.sub(r"{\w+}", "0" * 24, path)
                r = c.request(method.upper(), url, json={}, headers=bearer(customer))
                assert r.status_code == 403, (method, path, r.text)
                assert c.request(method.upper(), url, json={}).status_code == 401
                checked += 1
        # products, categories, users, orders, banners, chit, settings, dashboard
        assert checked >= 25, checked


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "POST",
            "/api/v1/auth/register",
            {"content": b'{"name": "x",', "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/api/v1/auth/register",
            {"content": b"name=x", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/v1/auth/register",
            {"json": {"name": "x", "email": "a@b.co", "password": 12345678}},
            400,
            "validation_error",
        ),
        (
            "POST",
            "/api/v1/auth/register",
            {"json": {"name": "x", "email": "a@b.co", "password": "12345678", "role": "admin"}},
            400,
            "validation_error",
        ),
        (
            "POST",
            "/api/v1/auth/login",
            {"json": {"email": {"$ne": None}, "password": "x"}},
            400,
            "validation_error",
        ),
        ("GET", "/api/v1/products/zzz", {}, 404, "not_found"),
        ("GET", "/api/v1/products/" + "0" * 24, {}, 404, "not_found"),
        ("GET", "/api/v1/nothing", {}, 404, "not_found"),
        ("GET", "/api/v1/products?page=1&page=2", {}, 400, "validation_error"),
        (
            "POST",
            "/api/v1/auth/register",
            {"content": b"x" * (1024 * 1024 + 1), "headers": {"Content-Type": "application/json"}},
            413,
            "payload_too_large",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(
    server: Server, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    """Each bad input gets its status and JSON envelope, never a 500."""
    with server.client() as c:
        r = c.request(method, path, **kwargs)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["success"] is False and body["code"] == code
        if path == "/api/v1/nothing":
            assert body["error"] == "Route /api/v1/nothing not found"


def test_rejected_writes_change_nothing(server: Server, admin: str) -> None:
    """A refused product write leaves the catalogue as it was."""
    with server.client() as c:
        before = c.get("/api/v1/products", headers=bearer(admin)).json()["total"]
        r = c.post(
            "/api/v1/products",
            json={"name": "X", "price": -5, "category": "0" * 24},
            headers=bearer(admin),
        )
        assert r.status_code == 400 and set(r.json()["details"]) >= {"price"}
        assert c.get("/api/v1/products", headers=bearer(admin)).json()["total"] == before


def test_data_survives_a_restart(tmp_path: Path) -> None:
    """`crackershop serve` keeps its embedded data across a restart."""
    first = Server(tmp_path)
    email = unique("keep") + "@example.com"
    with first.client() as c:
        register(c, email)
    assert first.stop() == 0
    second = Server(tmp_path)
    try:
        with second.client() as c:
            r = c.post("/api/v1/auth/login", json={"email": email, "password": "password123"})
            assert r.status_code == 200
    finally:
        assert second.stop() == 0
