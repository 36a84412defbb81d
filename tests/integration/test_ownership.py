"""Files belong to what uses them, through the real server: every route that
replaces or removes an image, driven by someone who does not own the
target, leaves the target served byte for byte."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.test_app_client import PNG, App, email, new_category, succeeded
from tests.support import Server, wait_until

TARGET = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64


def test_no_route_deletes_an_image_it_does_not_own(server: Server, admin: str) -> None:
    """A customer cannot take a product's image as avatar (403); admins that
    reuse it in a category, a banner, About Us or another product and then
    drop it delete nothing; the image goes only with its last user."""
    owner = App(server, admin)
    category = new_category(owner)
    r = owner.form(
        "POST",
        "/products",
        {"name": f"Target {uuid.uuid4().hex[:6]}", "price": "100", "category": category},
        [("images", ("t.png", TARGET, "image/png"))],
    )
    product = succeeded(r, 201)["data"]
    target = product["images"][0]

    def intact() -> None:
        got = httpx.get(target)
        assert got.status_code == 200 and got.content == TARGET

    # a customer, as avatar: refused at sign-up and on Edit Profile
    mallory = App(server)
    address = email()
    r = mallory.json(
        "POST",
        "/auth/register",
        {"name": "M", "email": address, "password": "mallory-1", "avatar": target},
    )
    assert r.status_code == 403 and r.json()["success"] is False
    succeeded(
        mallory.form(
            "POST", "/auth/register", {"name": "M", "email": address, "password": "mallory-1"}
        ),
        201,
    )
    mallory.log_in(address, "mallory-1")
    assert mallory.json("PUT", "/auth/updatedetails", {"avatar": target}).status_code == 403
    for n in range(2):  # own avatars replaced twice: only their own files go
        r = mallory.form(
            "PUT",
            "/auth/updatedetails",
            {"name": "M"},
            [("avatar", (f"{n}.png", PNG, "image/png"))],
        )
        succeeded(r)
    intact()
    # admins reusing it elsewhere, then dropping it
    other = succeeded(
        owner.json(
            "POST",
            "/products",
            {
                "name": f"Copy {uuid.uuid4().hex[:6]}",
                "price": 5,
                "category": category,
                "existingImages": [target],
            },
        ),
        201,
    )["data"]
    succeeded(owner.json("PUT", f"/products/{other['_id']}", {"clearImages": True}))
    succeeded(owner.json("DELETE", f"/products/{other['_id']}"))
    cat = succeeded(
        owner.json(
            "POST", "/categories", {"name": f"Reuse {uuid.uuid4().hex[:6]}", "image": target}
        ),
        201,
    )["data"]
    succeeded(
        owner.form("PUT", f"/categories/{cat['_id']}", {"name": cat["name"], "clearImage": "true"})
    )
    succeeded(owner.json("DELETE", f"/categories/{cat['_id']}"))
    banner = succeeded(owner.json("POST", "/banners", {"title": "Reuse", "image": target}), 201)[
        "data"
    ]
    succeeded(
        owner.form(
            "PUT",
            f"/banners/{banner['_id']}",
            {"title": "Other"},
            [("image", ("b.png", PNG, "image/png"))],
        )
    )
    succeeded(owner.json("DELETE", f"/banners/{banner['_id']}"))
    about = succeeded(owner.get("/settings/about-us"))["data"]
    succeeded(owner.json("PUT", "/settings", {"aboutUs": {**about, "image": target}}))
    succeeded(owner.json("PUT", "/settings", {"aboutUs": {**about, "image": ""}}))
    intact()
    # its own product letting go is the last use
    succeeded(owner.json("DELETE", f"/products/{product['_id']}"))
    wait_until(lambda: httpx.get(target).status_code == 404, 10, "the unused image to go")
    mallory.close()
    owner.close()
