"""Images uploaded the way the app sends them, stored in GridFS, served back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pymongo
import pytest

from tests.support import Server, bearer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
GIF = b"GIF89a" + b"\x01" * 300


@pytest.fixture
def files(server: Server) -> Iterator[pymongo.collection.Collection]:
    """The server's uploads.files collection, read through its embedded database."""
    uri = (server.workdir / "data" / "db.uri").read_text().strip()
    client: pymongo.MongoClient = pymongo.MongoClient(uri, directConnection=True)
    yield client["crackershop"]["uploads.files"]
    client.close()


def category(server: Server, admin: str) -> str:
    with server.client() as c:
        r = c.post(
            "/api/v1/categories", headers=bearer(admin), json={"name": f"Up {uuid.uuid4().hex[:6]}"}
        )
        cat_id: str = r.json()["data"]["_id"]
        return cat_id


def test_product_created_from_the_apps_form(
    server: Server, admin: str, files: pymongo.collection.Collection
) -> None:
    """A multipart product with two images is stored; the images come back byte for byte."""
    cat = category(server, admin)
    with server.client() as c:
        r = c.post(
            "/api/v1/products",
            headers=bearer(admin),
            data={
                "name": f"Form {uuid.uuid4().hex[:6]}",
                "price": "120",
                "category": cat,
                "quantity": "7",
                "isFeatured": "true",
            },
            files=[
                ("images", ("a.png", PNG, "image/png")),
                ("images", ("b.gif", GIF, "image/gif")),
            ],
        )
        assert r.status_code == 201, r.text
        product = r.json()["data"]
        assert product["price"] == 120 and product["quantity"] == 7
        assert product["isFeatured"] is True and len(product["images"]) == 2
        assert product["image"] == product["images"][0]
        first = c.get(product["images"][0])
        assert first.status_code == 200 and first.content == PNG
        assert first.headers["content-type"] == "image/png"
        assert "max-age=31536000" in first.headers["cache-control"]
        again = c.get(product["images"][0], headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        # Keep the GIF, add a new PNG: the first PNG is no longer used and is deleted.
        r = c.put(
            f"/api/v1/products/{product['_id']}",
            headers=bearer(admin),
            data={"existingImages": product["images"][1]},
            files=[("images", ("c.png", PNG, "image/png"))],
        )
        assert r.status_code == 200, r.text
        images = r.json()["data"]["images"]
        assert images[0] == product["images"][1] and len(images) == 2
        assert c.get(product["images"][0]).status_code == 404
        name = images[1].rsplit("/", 1)[1]
        assert files.count_documents({"filename": name}) == 1
        assert (
            c.delete(f"/api/v1/products/{product['_id']}", headers=bearer(admin)).status_code == 200
        )
        assert (
            files.count_documents({"filename": {"$in": [i.rsplit("/", 1)[1] for i in images]}}) == 0
        )


@pytest.mark.parametrize(
    ("upload", "field"),
    [
        ([("images", ("evil.png", b"just some text, honestly", "image/png"))], "images"),
        ([("images", ("big.png", PNG[:8] + b"\x00" * (5 * 1024 * 1024), "image/png"))], "images"),
        ([("images", (f"{i}.png", PNG, "image/png")) for i in range(6)], "images"),
        ([("manual", ("a.png", PNG, "image/png"))], "manual"),
    ],
    ids=["text-named-png", "oversized", "sixth-image", "unexpected-field"],
)
def test_bad_uploads_store_nothing(
    server: Server, admin: str, files: pymongo.collection.Collection, upload: list, field: str
) -> None:
    """A mistyped, oversized, sixth or unexpected file is a 400 and nothing is stored."""
    cat = category(server, admin)
    before = files.count_documents({})
    name = f"Bad {uuid.uuid4().hex[:6]}"
    with server.client() as c:
        r = c.post(
            "/api/v1/products",
            headers=bearer(admin),
            data={"name": name, "price": "10", "category": cat},
            files=upload,
        )
        assert r.status_code == 400, r.text
        assert field in r.json()["details"]
        listing = c.get("/api/v1/products/search/query", params={"q": name}).json()
        assert listing["total"] == 0
    assert files.count_documents({}) == before


def test_avatar_banner_and_category_images(server: Server, admin: str) -> None:
    """Register with an avatar; banners and categories take an image file too."""
    with server.client() as c:
        r = c.post(
            "/api/v1/auth/register",
            data={
                "name": "Pic",
                "email": f"pic-{uuid.uuid4().hex[:6]}@example.com",
                "password": "password123",
            },
            files=[("avatar", ("me.gif", GIF, "image/gif"))],
        )
        assert r.status_code == 201, r.text
        assert c.get(r.json()["data"]["avatar"]).content == GIF
        r = c.post(
            "/api/v1/banners",
            headers=bearer(admin),
            data={"title": "Sale"},
            files=[("image", ("s.png", PNG, "image/png"))],
        )
        assert r.status_code == 201, r.text
        assert c.get(r.json()["data"]["image"]).content == PNG
        assert (
            c.post("/api/v1/banners", headers=bearer(admin), data={"title": "No image"}).status_code
            == 400
        )
        r = c.post(
            "/api/v1/categories",
            headers=bearer(admin),
            data={"name": f"Pics {uuid.uuid4().hex[:6]}"},
            files=[("image", ("c.png", PNG, "image/png"))],
        )
        assert r.status_code == 201 and c.get(r.json()["data"]["image"]).content == PNG
        assert (
            c.post(
                "/api/v1/auth/login",
                files=[("x", ("a.png", PNG, "image/png"))],
                data={"email": "a@b.co"},
            ).status_code
            == 415
        )
