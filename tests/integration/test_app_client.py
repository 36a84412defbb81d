"""The shop's app, screen by screen, against the real server.

Every call of CLIENT.md is replayed here with the app's own bodies (JSON
as it builds them, multipart forms with text parts as strings and image
parts typed ``image/<extension>``), as a customer and as an admin, and every
field the app reads is checked with its type. A failure here is a screen of
the app that breaks.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Union

import httpx
import pytest

from tests.support import Server, bearer, wait_until

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8

Types = Union[type, tuple[type, ...]]
NUMBER = (int, float)
TEXT_OR_NULL = (str, type(None))

# what the app keeps of a user (login, me, updatedetails)
USER_READS: dict[str, Types] = {
    "_id": str,
    "name": str,
    "email": str,
    "role": str,
    "avatar": str,
    "mobileNumber": str,
    "address": str,
    "pincode": str,
    "district": str,
    "state": str,
    "addresses": list,
}
PRODUCT_READS: dict[str, Types] = {
    "_id": str,
    "name": str,
    "price": NUMBER,
    "discountPrice": NUMBER,
    "images": list,
    "isFeatured": bool,
    "isDiwaliSpecial": bool,
    "createdAt": str,
    "description": str,
    "quantity": NUMBER,
    "pack": str,
    "videoUrl": str,
}
ORDER_READS: dict[str, Types] = {
    "_id": str,
    "orderItems": list,
    "totalPrice": NUMBER,
    "shippingPrice": NUMBER,
    "taxPrice": NUMBER,
    "otherFees": NUMBER,
    "discountPrice": NUMBER,
    "itemsPrice": NUMBER,
    "paymentMethod": str,
    "isPaid": bool,
    "isDelivered": bool,
    "orderStatus": str,
    "createdAt": str,
    "deliveredAt": TEXT_OR_NULL,
    "shippingAddress": str,
    "user": dict,
}
NOTIFICATION_READS: dict[str, Types] = {
    "_id": str,
    "title": str,
    "message": str,
    "type": str,
    "isRead": bool,
    "createdAt": str,
    "data": dict,
}


def reads(doc: dict[str, Any], fields: dict[str, Types]) -> None:
    """Every field the screen reads is there, with the type it uses."""
    for name, kind in fields.items():
        assert name in doc, f"{name} missing from {sorted(doc)}"
        assert isinstance(doc[name], kind), f"{name} is {doc[name]!r}, not {kind}"


def succeeded(r: httpx.Response, status: int = 200) -> Any:
    """The app's test of success: ``success === true`` (and the status it gets)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is True, body
    return body


def refused(r: httpx.Response, status: int) -> str:
    """A failure as the app shows it: the human text in ``error``."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and isinstance(body["error"], str)
    assert body["error"] not in ("Validation failed", ""), body
    error: str = body["error"]
    return error


def multipart(
    fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]
) -> tuple[bytes, str]:
    """multipart/form-data: text parts first, then the files."""
    boundary = "----RNFormBoundary" + uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, (filename, data, mime) in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {mime}\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def email() -> str:
    # as typed on a phone: mixed case
    return f"Diya.{uuid.uuid4().hex[:8]}@Example.com"


class App:
    """One installation of the app: its stored session, sending what it sends."""

    def __init__(self, server: Server, token: Optional[str] = None) -> None:
        self.http = server.client()
        self.token = token
        self.user: dict[str, Any] = {}

    def close(self) -> None:
        self.http.close()

    def headers(self) -> dict[str, str]:
        return bearer(self.token) if self.token else {}

    def get(self, path: str) -> httpx.Response:
        return self.http.get("/api/v1" + path, headers=self.headers())

    def json(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> httpx.Response:
        if body is None:  # bodiless PUT/DELETE: no body, no Content-Type
            return self.http.request(method, "/api/v1" + path, headers=self.headers())
        return self.http.request(method, "/api/v1" + path, json=body, headers=self.headers())

    def form(
        self,
        method: str,
        path: str,
        fields: dict[str, str],
        files: Optional[list[tuple[str, tuple[str, bytes, str]]]] = None,
    ) -> httpx.Response:
        """A FormData body, as React Native sends it (multipart even with no file)."""
        body, content_type = multipart(fields, files or [])
        headers = {**self.headers(), "Content-Type": content_type}
        return self.http.request(method, "/api/v1" + path, content=body, headers=headers)

    def log_in(self, address: str, password: str) -> dict[str, Any]:
        body = succeeded(self.json("POST", "/auth/login", {"email": address, "password": password}))
        assert isinstance(body["token"], str)
        reads(body["data"], USER_READS)
        assert "password" not in body["data"]
        self.token, self.user = body["token"], body["data"]
        return self.user


@pytest.fixture
def customer(server: Server) -> Any:
    """A signed-up, logged-in customer's app."""
    app = App(server)
    address = email()
    r = app.form(
        "POST",
        "/auth/register",
        {"name": "Diya Raman", "email": address, "password": "sparkle-9"},
    )
    succeeded(r, 201)
    app.log_in(address, "sparkle-9")
    yield app
    app.close()


@pytest.fixture
def shop_admin(server: Server, admin: str) -> Any:
    """The admin's app, logged in."""
    app = App(server, admin)
    app.user = succeeded(app.get("/auth/me"))["data"]
    yield app
    app.close()


def new_category(admin: App) -> str:
    r = admin.form(
        "POST",
        "/categories",
        {"name": f"Sky {uuid.uuid4().hex[:6]}", "description": "", "status": "Active"},
        [("image", ("IMG_0001.jpg", JPEG, "image/jpg"))],
    )
    category_id: str = succeeded(r, 201)["data"]["_id"]
    return category_id


def new_product(
    admin: App, category: str, price: str, discount: str = "", stock: str = "50"
) -> Any:
    """Admin > Add Product, as the form sends it."""
    fields = {
        "name": f"Rocket {uuid.uuid4().hex[:6]}",
        "price": price,
        "quantity": stock,
        "pack": "1 box (10 pcs)",
        "description": "Goes up, comes down gold.",
        "category": category,
        "isFeatured": "true",
        "isDiwaliSpecial": "false",
    }
    if discount:
        fields["discountPrice"] = discount
    r = admin.form("POST", "/products", fields, [("images", ("photo", PNG, "image/jpeg"))])
    product = succeeded(r, 201)["data"]
    reads(product, PRODUCT_READS)
    return product


# -- sign-up, profile, addresses, password


def test_sign_up_with_every_field(server: Server) -> None:
    """Register with the address fields and an avatar (image/jpg): stored and
    read back by login and Profile; a short password says why in ``error``."""
    app = App(server)
    address = email()
    fields = {
        "name": "Karthik S",
        "email": address,
        "password": "rocket-77",
        "mobileNumber": "98765 43210",
        "address": "12, Car Street",
        "pincode": "626123",
        "district": "Virudhunagar",
        "state": "Tamil Nadu",
    }
    r = app.form("POST", "/auth/register", fields, [("avatar", ("me.jpg", JPEG, "image/jpg"))])
    succeeded(r, 201)
    user = app.log_in(address, "rocket-77")
    assert user["email"] == address.lower() and user["role"] == "customer"
    assert (user["address"], user["pincode"], user["district"], user["state"]) == (
        "12, Car Street",
        "626123",
        "Virudhunagar",
        "Tamil Nadu",
    )
    assert user["mobileNumber"] == "9876543210"
    assert user["avatar"].startswith("http") and "/uploads/" in user["avatar"]
    assert httpx.get(user["avatar"]).content == JPEG  # served without a token
    me = succeeded(app.get("/auth/me"))["data"]
    reads(me, USER_READS)
    assert me["_id"] == user["_id"] and me["addresses"] == []
    # the app allows 6 characters; the server keeps its 8 and says so
    short = app.form(
        "POST", "/auth/register", {"name": "K", "email": email(), "password": "abc123"}
    )
    assert refused(short, 400) == "Password must be at least 8 characters"
    app.close()


def test_edit_profile(customer: App) -> None:
    """Edit Profile saves every field, blank ones cleared, with a new avatar;
    the answer is the whole user."""
    fields = {
        "name": "Diya R",
        "mobileNumber": "+91 98400 12345",
        "address": "4 Temple Road",
        "pincode": "",
        "district": "",
        "state": "",
    }
    r = customer.form(
        "PUT", "/auth/updatedetails", fields, [("avatar", ("IMG_2041.png", PNG, "image/png"))]
    )
    user = succeeded(r)["data"]
    reads(user, USER_READS)
    assert (user["name"], user["mobileNumber"], user["address"]) == (
        "Diya R",
        "+919840012345",
        "4 Temple Road",
    )
    assert (user["pincode"], user["district"], user["state"]) == ("", "", "")
    assert user["email"] == customer.user["email"] and user["role"] == "customer"
    assert httpx.get(user["avatar"]).content == PNG
    bad = customer.form("PUT", "/auth/updatedetails", {**fields, "pincode": "12"})
    assert refused(bad, 400) == "Pincode must be a 6-digit PIN code"


def test_saved_addresses(customer: App) -> None:
    """Saved Address: every answer's ``data`` is the addresses array."""
    home = {
        "label": "Home",
        "address": "12 Car Street",
        "pincode": "626123",
        "district": "Virudhunagar",
        "state": "Tamil Nadu",
    }
    added = succeeded(customer.json("POST", "/auth/addresses", home), 201)["data"]
    assert isinstance(added, list) and len(added) == 1
    assert set(added[0]) == {"_id", *home, "isDefault"} and added[0]["isDefault"] is True
    work = {**home, "label": "Work", "address": "3 Mill Road"}
    both = succeeded(customer.json("POST", "/auth/addresses", work), 201)["data"]
    assert [(a["label"], a["isDefault"]) for a in both] == [("Home", True), ("Work", False)]
    chosen = succeeded(customer.json("PUT", f"/auth/addresses/{both[1]['_id']}/default"))["data"]
    assert [a["isDefault"] for a in chosen] == [False, True]
    left = succeeded(customer.json("DELETE", f"/auth/addresses/{both[1]['_id']}"))["data"]
    assert [(a["label"], a["isDefault"]) for a in left] == [("Home", True)]
    assert succeeded(customer.get("/auth/me"))["data"]["addresses"] == left


def test_change_password_keeps_the_session(server: Server, customer: App) -> None:
    """Admin > Settings > Change Password: the app's token keeps working,
    another session ends, a wrong current password is a 400 (not 401)."""
    other = App(server)
    other.log_in(customer.user["email"], "sparkle-9")
    wrong = customer.json(
        "PUT",
        "/auth/change-password",
        {
            "currentPassword": "nope-nope",
            "newPassword": "diwali-26",
            "confirmPassword": "diwali-26",
        },
    )
    assert refused(wrong, 400) == "Current password is incorrect"
    mismatch = customer.json(
        "PUT",
        "/auth/change-password",
        {
            "currentPassword": "sparkle-9",
            "newPassword": "diwali-26",
            "confirmPassword": "diwali-62",
        },
    )
    assert "does not match" in refused(mismatch, 400)
    r = customer.json(
        "PUT",
        "/auth/change-password",
        {
            "currentPassword": "sparkle-9",
            "newPassword": "diwali-26",
            "confirmPassword": "diwali-26",
        },
    )
    succeeded(r)
    succeeded(customer.get("/auth/me"))  # the same token: still logged in
    assert other.get("/auth/me").status_code == 401
    assert (
        App(server)
        .json("POST", "/auth/login", {"email": customer.user["email"], "password": "diwali-26"})
        .json()["success"]
    )
    other.close()


def test_forgot_password_screen_is_refused_with_the_way_forward(customer: App) -> None:
    """Forgot Password sends {email, password} and no token: refused, the
    password unchanged, ``error`` pointing to the e-mailed link."""
    r = customer.json(
        "POST", "/auth/resetpassword", {"email": customer.user["email"], "password": "taken-over"}
    )
    error = refused(r, 400)
    assert "link" in error and "e-mail" in error
    bad = customer.json(
        "POST", "/auth/login", {"email": customer.user["email"], "password": "taken-over"}
    )
    assert bad.status_code == 401


# -- catalogue


def test_catalogue_as_home_and_inventory_read_it(customer: App, shop_admin: App) -> None:
    """Home and Inventory list 100 products with every field they read."""
    category = new_category(shop_admin)
    new_product(shop_admin, category, "199.5", discount="149")
    for app in (customer, shop_admin):
        body = succeeded(app.get("/products?limit=100&page=1"))
        assert isinstance(body["count"], int) and body["data"]
        for product in body["data"]:
            reads(product, PRODUCT_READS)
            assert isinstance(product["category"], (dict, str, type(None)))
    categories = succeeded(customer.get("/categories"))["data"]
    for c in categories:
        reads(c, {"_id": str, "name": str, "status": str})
    banners = succeeded(customer.get("/banners"))["data"]
    assert isinstance(banners, list)


def test_category_form_and_clear_image(shop_admin: App) -> None:
    """Add/Edit Category: clearImage=true (also on create) means no image and
    deletes the file it had."""
    made = shop_admin.form(
        "POST",
        "/categories",
        {
            "name": f"Bare {uuid.uuid4().hex[:6]}",
            "description": "",
            "status": "Active",
            "clearImage": "true",
        },
    )
    assert not succeeded(made, 201)["data"].get("image")
    category_id = new_category(shop_admin)
    before = succeeded(shop_admin.get(f"/categories/{category_id}"))["data"]
    assert before["image"].startswith("http")
    r = shop_admin.form(
        "PUT",
        f"/categories/{category_id}",
        {
            "name": before["name"],
            "description": "Sky shots",
            "status": "Active",
            "clearImage": "true",
        },
    )
    after = succeeded(r)["data"]
    assert not after.get("image") and after["description"] == "Sky shots"
    wait_until(lambda: httpx.get(before["image"]).status_code == 404, 10, "the file to go")
    # kept: nothing sent for the image
    r = shop_admin.form(
        "PUT",
        f"/categories/{category_id}",
        {"name": before["name"], "description": "", "status": "Active"},
    )
    assert not succeeded(r)["data"].get("image")
    assert succeeded(shop_admin.json("DELETE", f"/categories/{made.json()['data']['_id']}"))


def test_product_form_and_clear_images(shop_admin: App) -> None:
    """Edit Product: kept images as existingImages URLs beside new files, in
    screen order; clearImages=true removes them all."""
    category = new_category(shop_admin)
    product = new_product(shop_admin, category, "300")
    first = product["images"][0]
    fields = {
        "name": product["name"],
        "price": "320",
        "quantity": "40",
        "description": product["description"],
        "category": category,
        "isFeatured": "false",
        "isDiwaliSpecial": "true",
        "existingImages": first,
    }
    r = shop_admin.form(
        "PUT", f"/products/{product['_id']}", fields, [("images", ("IMG_9.png", PNG, "image/png"))]
    )
    edited = succeeded(r)["data"]
    assert edited["images"][0] == first and len(edited["images"]) == 2
    assert (edited["price"], edited["isDiwaliSpecial"]) == (320, True)
    fields = {k: v for k, v in fields.items() if k != "existingImages"}
    r = shop_admin.form("PUT", f"/products/{product['_id']}", {**fields, "clearImages": "true"})
    cleared = succeeded(r)["data"]
    assert cleared["images"] == [] and not cleared.get("image")
    for url in edited["images"]:
        wait_until(lambda u=url: httpx.get(u).status_code == 404, 10, "the files to go")
    succeeded(shop_admin.json("DELETE", f"/products/{product['_id']}"))


def test_banner_form(shop_admin: App) -> None:
    """Add Banner (multipart with an image, empty subtitle and link) and Edit
    Banner (title, subtitle, link only); deletes answer 2xx."""
    r = shop_admin.form(
        "POST",
        "/banners",
        {"title": "Diwali sale", "subtitle": "", "link": "", "status": "Active"},
        [("image", ("banner.jpg", JPEG, "image/jpg"))],
    )
    banner = succeeded(r, 201)["data"]
    r = shop_admin.form(
        "PUT",
        f"/banners/{banner['_id']}",
        {"title": "Diwali sale!", "subtitle": "40% off", "link": ""},
    )
    assert 200 <= r.status_code < 300 and r.json()["data"]["title"] == "Diwali sale!"
    listed = succeeded(shop_admin.get("/banners"))["data"]
    for b in listed:
        reads(b, {"_id": str, "title": str, "image": str, "status": str})
    assert 200 <= shop_admin.json("DELETE", f"/banners/{banner['_id']}").status_code < 300


# -- checkout and orders


def checkout_body(
    cart: list[tuple[dict[str, Any], int]], settings: dict[str, Any], address: str
) -> dict[str, Any]:
    """The order body exactly as Checkout builds it from the cart."""
    items = []
    for product, qty in cart:
        line: dict[str, Any] = {"product": product["_id"], "name": product["name"], "qty": qty}
        image = product.get("image") or (product["images"][0] if product["images"] else None)
        if image:
            line["image"] = image
        line["price"] = product["price"]
        items.append(line)

    def effective(p: dict[str, Any]) -> float:
        d = p.get("discountPrice") or 0
        return float(d if 0 < d < p["price"] else p["price"])

    items_price = sum(p["price"] * q for p, q in cart)
    discounted = sum(effective(p) * q for p, q in cart)
    shipping = settings["shipping"]
    fees = settings["fees"]
    shipping_price = 0 if discounted >= shipping["freeShippingAbove"] else shipping["baseFee"]
    other = fees["packagingFee"] + fees["handlingFee"]
    return {
        "orderItems": items,
        "shippingAddress": address,
        "paymentMethod": "Requested",
        "itemsPrice": items_price,
        "discountPrice": sum((p["price"] - effective(p)) * q for p, q in cart),
        "shippingPrice": shipping_price,
        "otherFees": other,
        "taxPrice": 0,
        "totalPrice": round(discounted + shipping_price + other),
    }


def test_checkout_as_the_app_builds_it(server: Server, customer: App, shop_admin: App) -> None:
    """Place order with the app's whole body (names, list prices, images,
    float totals, a string address): 201, and every figure is the server's."""
    category = new_category(shop_admin)
    rocket = new_product(shop_admin, category, "19.99", discount="12.99", stock="30")
    chakra = new_product(shop_admin, category, "250")
    settings = succeeded(customer.get("/settings"))["data"]
    minimum = succeeded(customer.get("/settings/order-settings"))["data"]["minimumOrderAmount"]
    assert isinstance(minimum, NUMBER)
    address = "12, Car Street, Virudhunagar, Tamil Nadu - 626123\nPhone: 9876543210"
    body = checkout_body([(rocket, 3), (chakra, 1)], settings, address)
    assert body["discountPrice"] != 21  # the cart's float drift: 21.000000000000004
    placed = succeeded(customer.json("POST", "/orders", body), 201)["data"]
    reads(placed, ORDER_READS)
    lines = {i["name"]: i for i in placed["orderItems"]}
    assert lines[rocket["name"]]["price"] == 19.99 and lines[rocket["name"]]["qty"] == 3
    assert placed["itemsPrice"] == 309.97  # 3 x 19.99 + 250, list prices
    assert placed["discountPrice"] == 21  # 3 x (19.99 - 12.99)
    assert placed["shippingPrice"] == settings["shipping"]["baseFee"]  # 288.97 < 500
    assert placed["totalPrice"] == round(
        309.97 - 21 + placed["shippingPrice"] + placed["otherFees"] + placed["taxPrice"], 2
    )
    assert placed["shippingAddress"] == address
    assert placed["user"]["_id"] == customer.user["_id"]
    # a cart with stale or forged figures places the same order at the server's prices
    forged = {**body, "totalPrice": 1, "itemsPrice": 1}
    forged["orderItems"] = [{**line, "price": 0.01, "name": "Free"} for line in body["orderItems"]]
    again = succeeded(customer.json("POST", "/orders", forged), 201)["data"]
    assert again["totalPrice"] == placed["totalPrice"]
    assert sorted(i["name"] for i in again["orderItems"]) == sorted(lines)
    # the order screens' arithmetic
    mine = succeeded(customer.get(f"/orders/{placed['_id']}"))["data"]
    items = sum(i["price"] * i["qty"] for i in mine["orderItems"])
    assert round(items - (mine["totalPrice"] - mine["shippingPrice"]), 2) == round(
        mine["discountPrice"] - mine["otherFees"] - mine["taxPrice"], 2
    )
    assert (
        round(
            items
            - mine["discountPrice"]
            + mine["taxPrice"]
            + mine["shippingPrice"]
            + mine["otherFees"],
            2,
        )
        == mine["totalPrice"]
    )
    for line in mine["orderItems"]:
        reads(line, {"name": str, "qty": int, "price": NUMBER, "image": str})
    # short stock is a 409 naming the product, and nothing is placed
    too_many = checkout_body([(chakra, 1000)], settings, address)
    error = refused(customer.json("POST", "/orders", too_many), 409)
    assert chakra["name"] in error
    stock = succeeded(shop_admin.get(f"/products/{chakra['_id']}"))["data"]["quantity"]
    assert stock == 48


def test_order_screens(server: Server, customer: App, shop_admin: App) -> None:
    """Orders tab, Order detail, Admin > Orders and Order details read the
    order with its customer populated and the address as a string; another
    customer's order is a 404."""
    category = new_category(shop_admin)
    product = new_product(shop_admin, category, "600")
    settings = succeeded(customer.get("/settings"))["data"]
    succeeded(
        customer.form(
            "PUT",
            "/auth/updatedetails",
            {
                "name": "Diya",
                "mobileNumber": "9840012345",
                "address": "4 Temple Rd",
                "pincode": "",
                "district": "",
                "state": "",
            },
        )
    )
    body = checkout_body([(product, 1)], settings, "4 Temple Rd\nPhone: 9840012345")
    order = succeeded(customer.json("POST", "/orders", body), 201)["data"]
    mine = succeeded(customer.get("/orders/myorders"))["data"]
    assert mine[0]["_id"] == order["_id"]
    reads(mine[0], ORDER_READS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", mine[0]["createdAt"][:10])
    detail = succeeded(customer.get(f"/orders/{order['_id']}"))["data"]
    reads(detail["user"], {"name": str, "email": str, "mobileNumber": str})
    assert detail["user"]["mobileNumber"] == "9840012345"
    assert "password" not in detail["user"] and "tokenVersion" not in detail["user"]
    phone = re.search(r"Phone:\s*(\d+)", detail["shippingAddress"].replace("\n", " "))
    assert phone is not None and phone.group(1) == "9840012345"
    listed = succeeded(shop_admin.get("/orders"))["data"]
    row = next(o for o in listed if o["_id"] == order["_id"])
    assert row["user"]["name"] == "Diya" and row["user"]["mobileNumber"] == "9840012345"
    for o in listed:
        assert isinstance(o["shippingAddress"], str)  # .replace() on every row
        assert all(isinstance(i["name"], str) for i in o["orderItems"])
    admin_detail = succeeded(shop_admin.get(f"/orders/{order['_id']}"))["data"]
    assert admin_detail["user"]["email"] == customer.user["email"]
    stranger = App(server)
    address = email()
    succeeded(
        stranger.form(
            "POST", "/auth/register", {"name": "S", "email": address, "password": "stranger-1"}
        ),
        201,
    )
    stranger.log_in(address, "stranger-1")
    assert stranger.get(f"/orders/{order['_id']}").status_code == 404
    stranger.close()


def test_admin_moves_orders_along(customer: App, shop_admin: App) -> None:
    """The "next" button and the details modal send {status}; the customer is
    told at every step and the admins of every new order."""
    category = new_category(shop_admin)
    product = new_product(shop_admin, category, "700")
    settings = succeeded(customer.get("/settings"))["data"]
    orders = [
        succeeded(
            customer.json(
                "POST",
                "/orders",
                checkout_body([(product, 1)], settings, "Addr\nPhone: 9876543210"),
            ),
            201,
        )["data"]["_id"]
        for _ in range(2)
    ]

    def admins_told() -> bool:
        told = succeeded(shop_admin.get("/notifications"))["data"]
        about = {n["data"].get("orderId") for n in told if n["type"] == "order"}
        return set(orders) <= about

    # every admin is told in the background: the placing request did not wait
    wait_until(admins_told, 10, "the admins to be told of both orders")
    first, second = orders
    for status in ("Processing", "Shipped"):
        succeeded(shop_admin.json("PUT", f"/orders/{first}/status", {"status": status}))
    succeeded(shop_admin.json("PUT", f"/orders/{second}/status", {"status": "Shipped"}))  # a skip
    r = shop_admin.json("PUT", f"/orders/{second}/status", {"status": "Requested"})
    assert r.status_code == 409 and r.json()["success"] is False  # backward: refused
    succeeded(shop_admin.json("PUT", f"/orders/{second}/status", {"status": "Cancelled"}))
    assert succeeded(customer.get(f"/orders/{first}"))["data"]["orderStatus"] == "Shipped"
    notes = succeeded(customer.get("/notifications"))["data"]
    for n in notes:
        reads(n, NOTIFICATION_READS)
    about_first = [n["data"].get("orderStatus") for n in notes if n["data"].get("orderId") == first]
    assert about_first[:2] == ["Shipped", "Processing"]
    assert any(n["title"] == "Order placed" for n in notes)


def test_notifications_screen(customer: App, shop_admin: App) -> None:
    """Mark one read, mark all read, delete: each answers success."""
    category = new_category(shop_admin)
    product = new_product(shop_admin, category, "800")
    settings = succeeded(customer.get("/settings"))["data"]
    order = succeeded(
        customer.json(
            "POST", "/orders", checkout_body([(product, 1)], settings, "A\nPhone: 9876543210")
        ),
        201,
    )["data"]
    succeeded(shop_admin.json("PUT", f"/orders/{order['_id']}/status", {"status": "Processing"}))
    notes = succeeded(customer.get("/notifications"))["data"]
    assert len(notes) >= 2 and any(not n["isRead"] for n in notes)
    succeeded(customer.json("PUT", f"/notifications/{notes[0]['_id']}/read"))
    succeeded(customer.json("PUT", "/notifications/read-all"))
    assert all(n["isRead"] for n in succeeded(customer.get("/notifications"))["data"])
    succeeded(customer.json("DELETE", f"/notifications/{notes[0]['_id']}"))


# -- admin: users, settings


def test_users_screen(server: Server, shop_admin: App) -> None:
    """Admin > Users reads the users figure and rows; Block stops the user at
    once with a 403 (their app keeps its session), Unblock lets them back."""
    app = App(server)
    address = email()
    succeeded(
        app.form(
            "POST", "/auth/register", {"name": "B", "email": address, "password": "blocked-1"}
        ),
        201,
    )
    user = app.log_in(address, "blocked-1")
    body = succeeded(shop_admin.get("/users"))
    assert isinstance(body["count"], int) and body["count"] >= 1
    for row in body["data"]:
        reads(
            row,
            {
                "_id": str,
                "name": str,
                "email": str,
                "status": str,
                "role": str,
                "avatar": str,
                "createdAt": str,
            },
        )
    succeeded(shop_admin.json("PUT", f"/users/{user['_id']}", {"status": "Blocked"}))
    assert refused(app.get("/auth/me"), 403)
    succeeded(shop_admin.json("PUT", f"/users/{user['_id']}", {"status": "Active"}))
    succeeded(app.get("/auth/me"))
    app.close()


def test_shipping_fees_and_about_us(customer: App, shop_admin: App) -> None:
    """Shipping & Fees sends back what it read (taxRate included); About Us
    sends aboutUs and contact with latitude/longitude numbers or null."""
    settings = succeeded(shop_admin.get("/settings"))["data"]
    for part, names in (
        ("shipping", ("baseFee", "freeShippingAbove")),
        ("fees", ("packagingFee", "handlingFee")),
        ("orderSettings", ("minimumOrderAmount",)),
    ):
        for name in names:
            assert isinstance(settings[part][name], NUMBER)
    sent = {
        "shipping": settings["shipping"],
        "fees": settings["fees"],
        "orderSettings": settings["orderSettings"],
    }
    succeeded(shop_admin.json("PUT", "/settings", sent))
    about = succeeded(shop_admin.get("/settings/about-us"))["data"]
    reads(about, {"title": str, "description": str, "mission": str, "vision": str, "image": str})
    edited = {**about, "mission": "Safe, bright Diwali for every home"}
    contact = {
        "email": "hello@shop.test",
        "phone": "+91 4562 220000",
        "address": "Sivakasi",
        "latitude": 9.4533,
        "longitude": 77.8024,
    }
    succeeded(shop_admin.json("PUT", "/settings", {"aboutUs": edited, "contact": contact}))
    shown = succeeded(customer.get("/settings"))["data"]
    assert shown["contact"]["latitude"] == 9.4533 and shown["contact"]["longitude"] == 77.8024
    assert succeeded(customer.get("/settings/about-us"))["data"]["mission"] == edited["mission"]
    cleared = {**contact, "latitude": None, "longitude": None}
    succeeded(shop_admin.json("PUT", "/settings", {"aboutUs": edited, "contact": cleared}))
    assert succeeded(customer.get("/settings"))["data"]["contact"]["latitude"] is None


# -- savings schemes


def test_savings_scheme_screens(server: Server, customer: App, shop_admin: App) -> None:
    """New Chit Scheme with "" and "10th Jan 2026" due dates, Update Next Due
    Date, Chit Registration, approve, record payment, My Schemes: each
    answers what its screen reads, due dates with days remaining."""
    plain = {
        "name": f"Diwali Saver {uuid.uuid4().hex[:4]}",
        "totalAmount": 12000,
        "installmentAmount": 1000,
        "durationMonths": 12,
        "description": "",
        "nextDueDate": "",
    }
    made = succeeded(shop_admin.json("POST", "/chit/schemes", plain), 201)["data"]
    assert made["nextDueDate"] is None
    dated = succeeded(
        shop_admin.json(
            "POST",
            "/chit/schemes",
            {**plain, "name": plain["name"] + "+", "nextDueDate": "10th Jan 2026"},
        ),
        201,
    )["data"]
    assert dated["nextDueDate"].startswith("2026-01-10")
    scheme_id = made["_id"]
    due = (datetime.now(timezone.utc) + timedelta(days=30)).date()
    typed = f"{due.day}th {due.strftime('%b %Y')}"
    updated = succeeded(
        shop_admin.json("PUT", f"/chit/schemes/{scheme_id}", {"nextDueDate": typed})
    )["data"]
    assert updated["nextDueDate"].startswith(due.isoformat())
    shown = succeeded(shop_admin.get(f"/chit/schemes/{scheme_id}"))["data"]
    reads(
        shown,
        {
            "name": str,
            "totalAmount": NUMBER,
            "installmentAmount": NUMBER,
            "durationMonths": int,
            "nextDueDate": TEXT_OR_NULL,
        },
    )
    listed = succeeded(customer.get("/chit/schemes"))["data"]
    assert any(s["_id"] == scheme_id for s in listed)
    join = {
        "schemeId": scheme_id,
        "name": "Diya",
        "mobileNumber": "9876543210",
        "address": "undefined, Virudhunagar, Tamil Nadu - 626123",
    }
    succeeded(customer.json("POST", "/chit/request-join", join), 201)
    wait_until(
        lambda: any(
            n["type"] == "chit" and n["data"].get("schemeId") == scheme_id
            for n in succeeded(shop_admin.get("/notifications"))["data"]
        ),
        10,
        "the admins to be told of the join request",
    )
    people = succeeded(shop_admin.get(f"/chit/schemes/{scheme_id}/participants"))["data"]
    person = people[0]
    reads(
        person,
        {"id": str, "name": str, "email": str, "paidMonths": int, "pending": int, "status": str},
    )
    assert person["status"] == "Pending Approval"
    assert "nextDueDate" in person and "daysRemaining" in person
    member = {"userId": person["id"], "schemeId": scheme_id}
    assert 200 <= shop_admin.json("POST", "/chit/admin/approve", member).status_code < 300
    pay = shop_admin.json(
        "POST", "/chit/admin/pay", {"schemeId": scheme_id, "userId": person["id"]}
    )
    assert 200 <= pay.status_code < 300
    person = succeeded(shop_admin.get(f"/chit/schemes/{scheme_id}/participants"))["data"][0]
    # the enrolment and one instalment, as the old backend counted them
    assert (person["paidMonths"], person["pending"]) == (2, 10)
    assert person["daysRemaining"] in (29, 30) and person["nextDueDate"].startswith(due.isoformat())
    mine = succeeded(customer.get("/chit/my"))["data"]
    entry = next(m for m in mine if m["scheme"]["_id"] == scheme_id)
    reads(
        entry,
        {"scheme": dict, "monthsPaid": int, "totalPaid": NUMBER, "joinDate": str, "user": dict},
    )
    assert (entry["monthsPaid"], entry["totalPaid"]) == (2, 2000)
    assert entry["nextDueDate"].startswith(due.isoformat()) and entry["daysRemaining"] in (29, 30)
    assert entry["scheme"]["durationMonths"] == 12 and entry["user"]["name"] == "Diya"
    mine_told = succeeded(customer.get("/notifications"))["data"]
    assert any(n["type"] == "chit" for n in mine_told)


# -- development defaults


def test_development_limits_never_get_in_the_apps_way(tmp_path: Any) -> None:
    """Against the development defaults, two devices' quarter hour of app use
    (notification polls every 15 s, focus reloads, an admin's edits) meets no
    429; production keeps its limits (the unit tests of config hold those)."""
    server = Server(
        tmp_path,
        {
            "RATE_LIMIT_MAX_REQUESTS": None,
            "RATE_LIMIT_WRITE_MAX": None,
            "RATE_LIMIT_AUTH_MAX": None,
        },
    )
    try:
        app = App(server)
        address = email()
        succeeded(
            app.form(
                "POST", "/auth/register", {"name": "Dev", "email": address, "password": "develop-1"}
            ),
            201,
        )
        app.log_in(address, "develop-1")
        statuses = set()
        for _ in range(2 * 60):  # two devices, every 15 s for 15 minutes
            statuses.add(app.get("/notifications").status_code)
        for _ in range(20):  # tabs and lists reloaded on focus
            for path in (
                "/products?limit=100&page=1",
                "/categories",
                "/banners",
                "/settings",
                "/orders/myorders",
            ):
                statuses.add(app.get(path).status_code)
        home = {
            "label": "Home",
            "address": "1 Main St",
            "pincode": "626123",
            "district": "D",
            "state": "S",
        }
        for _ in range(20):  # more writes than the old development write limit
            added = app.json("POST", "/auth/addresses", home)
            statuses.add(added.status_code)
            statuses.add(
                app.json("DELETE", f"/auth/addresses/{added.json()['data'][-1]['_id']}").status_code
            )
        assert statuses == {200, 201}, statuses
        app.close()
    finally:
        assert server.stop() == 0
