"""Banners, notifications and savings schemes through the real server."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support import Server, bearer, register, wait_until


def test_concurrent_payments_for_one_month(server: Server, admin: str) -> None:
    """Two payments for the same month at once: one 201, one 409."""
    with server.client() as c:
        scheme = c.post(
            "/api/v1/chit/schemes",
            headers=bearer(admin),
            json={
                "name": f"Race {uuid.uuid4().hex[:6]}",
                "totalAmount": 600,
                "installmentAmount": 50,
                "durationMonths": 12,
            },
        ).json()["data"]
        member = register(c, f"race-{uuid.uuid4().hex[:8]}@example.com")
        token, uid = member["token"], member["data"]["_id"]
        assert (
            c.post(
                "/api/v1/chit/request-join",
                headers=bearer(token),
                json={
                    "schemeId": scheme["_id"],
                    "name": "R",
                    "mobileNumber": "9876543210",
                    "address": "A",
                },
            ).status_code
            == 201
        )
        assert (
            c.post(
                "/api/v1/chit/admin/approve",
                headers=bearer(admin),
                json={"userId": uid, "schemeId": scheme["_id"]},
            ).status_code
            == 200
        )

    def pay(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return c.post(
                "/api/v1/chit/pay",
                headers=bearer(token),
                json={"schemeId": scheme["_id"], "amount": 50, "monthIndex": 3},
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(pay, range(8)))
    assert codes == [201] + [409] * 7
    with server.client() as c:
        mine = c.get("/api/v1/chit/my", headers=bearer(token)).json()["data"][0]
        # the enrolment recorded at approval, and month 3 once
        assert mine["monthsPaid"] == 2 and mine["totalPaid"] == 100
        people = c.get(
            f"/api/v1/chit/schemes/{scheme['_id']}/participants", headers=bearer(admin)
        ).json()["data"]
        due = people[0].pop("nextDueDate")
        assert isinstance(due, str) and isinstance(people[0].pop("daysRemaining"), int)
        assert people == [
            {
                "id": uid,
                "name": "R",
                "email": member["data"]["email"],
                "mobileNumber": "9876543210",
                "paidMonths": 2,
                "pending": 10,
                "status": "Active",
            }
        ]


def test_new_product_notification_reaches_a_customer(server: Server, admin: str) -> None:
    """A product an admin adds shows up in a customer's notifications, unread."""
    with server.client() as c:
        customer = register(c, f"note-{uuid.uuid4().hex[:8]}@example.com")["token"]
        cat = c.post(
            "/api/v1/categories", headers=bearer(admin), json={"name": f"N{uuid.uuid4().hex[:6]}"}
        ).json()["data"]["_id"]
        name = f"Notify {uuid.uuid4().hex[:6]}"
        assert (
            c.post(
                "/api/v1/products",
                headers=bearer(admin),
                json={"name": name, "price": 5, "category": cat},
            ).status_code
            == 201
        )

        def arrived() -> dict[str, Any]:
            body: dict[str, Any] = c.get("/api/v1/notifications", headers=bearer(customer)).json()
            return body if any(name in n["message"] for n in body["data"]) else {}

        body = wait_until(arrived, 20, "the new-product notification")
        note = next(n for n in body["data"] if name in n["message"])
        assert note["isRead"] is False and body["unreadCount"] >= 1
        assert (
            c.put(f"/api/v1/notifications/{note['_id']}/read", headers=bearer(customer)).status_code
            == 200
        )


def test_banners_through_the_server(server: Server, admin: str) -> None:
    """An admin's banner is listed publicly; an inactive one only for admins."""
    with server.client() as c:
        title = f"Sale {uuid.uuid4().hex[:6]}"
        made = c.post(
            "/api/v1/banners",
            headers=bearer(admin),
            json={"title": title, "image": "/uploads/x.png", "status": "Inactive"},
        )
        assert made.status_code == 201
        public = [b["title"] for b in c.get("/api/v1/banners").json()["data"]]
        assert title not in public
        everyone = [
            b["title"] for b in c.get("/api/v1/banners", headers=bearer(admin)).json()["data"]
        ]
        assert title in everyone


def _all(c: httpx.Client, path: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = c.get(path, params={"page": page, "limit": 100}, headers=bearer(token)).json()
        items += body["data"]
        if page >= body["pages"]:
            return items
        page += 1


def test_dashboard_matches_a_count_by_hand(server: Server, admin: str) -> None:
    """/dashboard figures equal counts computed over every order, product and user."""
    address = {
        "address": "1 Main St",
        "pincode": "626123",
        "district": "Virudhunagar",
        "state": "Tamil Nadu",
    }
    with server.client() as c:
        cat = c.post(
            "/api/v1/categories",
            headers=bearer(admin),
            json={"name": f"Dash {uuid.uuid4().hex[:6]}"},
        ).json()["data"]["_id"]
        product = c.post(
            "/api/v1/products",
            headers=bearer(admin),
            json={
                "name": f"Dash {uuid.uuid4().hex[:6]}",
                "price": 150,
                "category": cat,
                "quantity": 100,
            },
        ).json()["data"]["_id"]
        buyer = register(c, f"dash-{uuid.uuid4().hex[:8]}@example.com")["token"]
        placed = []
        for qty in (1, 2, 3, 4):
            r = c.post(
                "/api/v1/orders",
                headers=bearer(buyer),
                json={
                    "orderItems": [{"product": product, "qty": qty}],
                    "shippingAddress": address,
                    "paymentMethod": "COD",
                },
            )
            assert r.status_code == 201, r.text
            placed.append(r.json()["data"]["_id"])
        for order_id in placed[:3]:
            assert (
                c.put(
                    f"/api/v1/orders/{order_id}/payment",
                    headers=bearer(admin),
                    json={"isPaid": True},
                ).status_code
                == 200
            )
        for status in ("Processing", "Shipped", "Out for Delivery", "Delivered"):
            assert (
                c.put(
                    f"/api/v1/orders/{placed[0]}/status",
                    headers=bearer(admin),
                    json={"orderStatus": status},
                ).status_code
                == 200
            )
        assert (
            c.put(
                f"/api/v1/orders/{placed[1]}/status",
                headers=bearer(admin),
                json={"orderStatus": "Cancelled"},
            ).status_code
            == 200
        )

        stats = c.get("/api/v1/dashboard/stats", headers=bearer(admin)).json()["data"]
        orders = _all(c, "/api/v1/orders", admin)
        products = _all(c, "/api/v1/products", admin)
        users = _all(c, "/api/v1/users", admin)
        paid = [o for o in orders if o["isPaid"] and o["orderStatus"] != "Cancelled"]
        revenue = round(sum(o["totalPrice"] for o in paid), 2)
        assert stats["orders"]["total"] == len(orders)
        for key, status in (
            ("pending", "Requested"),
            ("processing", "Processing"),
            ("delivered", "Delivered"),
        ):
            assert stats["orders"][key] == sum(1 for o in orders if o["orderStatus"] == status)
        assert stats["products"]["total"] == len(products)
        assert stats["products"]["featured"] == sum(1 for p in products if p["isFeatured"])
        assert stats["users"]["total"] == len(users)
        assert stats["revenue"]["total"] == revenue
        assert stats["revenue"]["average"] == (round(revenue / len(paid), 2) if paid else 0)

        chart = c.get(
            "/api/v1/dashboard/sales-chart", params={"days": 7}, headers=bearer(admin)
        ).json()["data"]
        assert len(chart) == 7 and round(sum(d["revenue"] for d in chart), 2) == revenue
        top = c.get(
            "/api/v1/dashboard/top-products", params={"limit": 100}, headers=bearer(admin)
        ).json()["data"]
        mine = next(t for t in top if t["product"] == product)
        assert mine["sold"] == 1 + 3 + 4  # the cancelled order's 2 units do not count
