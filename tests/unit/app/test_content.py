"""Banners, notifications and the savings schemes over the in-memory store."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from tests.unit.app.harness import Harness


def test_banners_visibility_and_admin_crud() -> None:
    """Customers see Active banners; admins see all and manage them."""
    h = Harness()
    admin = h.admin()
    code, made, _ = h.request(
        "POST", "/api/v1/banners", {"title": "Diwali sale", "image": "/u/b.png"}, token=admin
    )
    assert code == 201
    bid = made["data"]["_id"]
    h.request(
        "POST",
        "/api/v1/banners",
        {"title": "Old", "image": "/u/o.png", "status": "Inactive"},
        token=admin,
    )
    assert [b["title"] for b in h.request("GET", "/api/v1/banners")[1]["data"]] == ["Diwali sale"]
    assert len(h.request("GET", "/api/v1/banners", token=admin)[1]["data"]) == 2
    assert h.request("POST", "/api/v1/banners", {"title": "x"}, token=admin)[0] == 400
    code, _body, _ = h.request("PUT", f"/api/v1/banners/{bid}", {"image": None}, token=admin)
    assert code == 400
    assert h.request("DELETE", f"/api/v1/banners/{bid}", token=admin)[0] == 200
    assert h.request("DELETE", f"/api/v1/banners/{bid}", token=admin)[0] == 404


def test_new_product_notifies_every_customer_in_batches() -> None:
    """Adding a product tells each active customer once, and not the admins."""
    h = Harness()
    admin = h.admin()
    tokens = [h.register(f"c{i}@example.com") for i in range(3)]
    h.app.notifier.batch = 2  # several batches for three customers
    _, cat, _ = h.request("POST", "/api/v1/categories", {"name": "Rockets"}, token=admin)
    h.request(
        "POST",
        "/api/v1/products",
        {"name": "Sky Shot", "price": 10, "category": cat["data"]["_id"]},
        token=admin,
    )
    for token in tokens:
        code, body, _ = h.request("GET", "/api/v1/notifications", token=token)
        assert code == 200 and body["unreadCount"] == 1
        assert body["data"][0]["type"] == "promotion" and "Sky Shot" in body["data"][0]["message"]
    assert h.request("GET", "/api/v1/notifications", token=admin)[1]["count"] == 0


def test_notifications_are_private() -> None:
    """A user reads, marks and deletes only their own notifications."""
    h = Harness()
    alice, bob = h.register("alice@example.com"), h.register("bob@example.com")
    alice_id = ObjectId(h.request("GET", "/api/v1/auth/me", token=alice)[1]["data"]["_id"])
    h.store.notifications._insert(
        {"user": alice_id, "title": "t", "message": "m", "type": "system", "isRead": False}
    )
    nid = h.request("GET", "/api/v1/notifications", token=alice)[1]["data"][0]["_id"]
    assert h.request("PUT", f"/api/v1/notifications/{nid}/read", token=bob)[0] == 404
    assert h.request("DELETE", f"/api/v1/notifications/{nid}", token=bob)[0] == 404
    assert h.request("PUT", f"/api/v1/notifications/{nid}/read", token=alice)[0] == 200
    assert h.request("GET", "/api/v1/notifications", token=alice)[1]["unreadCount"] == 0
    assert h.request("DELETE", f"/api/v1/notifications/{nid}", token=alice)[0] == 200


def _scheme(h: Harness, admin: str, **extra: Any) -> str:
    body = {
        "name": "Diwali 2027",
        "totalAmount": 1200,
        "installmentAmount": 100,
        "durationMonths": 12,
        **extra,
    }
    code, made, _ = h.request("POST", "/api/v1/chit/schemes", body, token=admin)
    assert code == 201, made
    scheme_id: str = made["data"]["_id"]
    return scheme_id


def test_scheme_enrolment_approval_and_payments() -> None:
    """join (admins notified) -> approve (member notified, enrolment paid) ->
    pay each month once -> progress in /my, counted as the app counts it."""
    h = Harness()
    admin = h.admin()
    sid = _scheme(h, admin)
    token = h.register("saver@example.com")
    uid = h.request("GET", "/api/v1/auth/me", token=token)[1]["data"]["_id"]
    join = {"schemeId": sid, "name": "Saver", "mobileNumber": "98765 43210", "address": "X"}
    assert h.request("POST", "/api/v1/chit/request-join", join, token=token)[0] == 201
    assert h.request("POST", "/api/v1/chit/request-join", join, token=token)[0] == 409
    told = h.request("GET", "/api/v1/notifications", token=admin)[1]["data"][0]
    assert told["type"] == "chit" and told["data"]["schemeId"] == sid
    waiting = h.request("GET", f"/api/v1/chit/schemes/{sid}/participants", token=admin)[1]
    assert waiting["data"][0]["status"] == "Pending Approval"
    assert (waiting["data"][0]["nextDueDate"], waiting["data"][0]["daysRemaining"]) == (None, None)
    pay = {"schemeId": sid, "amount": 100, "monthIndex": 1}
    assert h.request("POST", "/api/v1/chit/pay", pay, token=token)[0] == 409  # not approved
    code, _, _ = h.request(
        "POST", "/api/v1/chit/admin/approve", {"userId": uid, "schemeId": sid}, token=admin
    )
    assert code == 200
    note = h.request("GET", "/api/v1/notifications", token=token)[1]["data"][0]
    assert note["type"] == "chit" and "approved" in note["message"]
    assert h.request("POST", "/api/v1/chit/pay", pay, token=token)[0] == 201
    assert h.request("POST", "/api/v1/chit/pay", pay, token=token)[0] == 409
    wrong = h.request(
        "POST", "/api/v1/chit/pay", {**pay, "monthIndex": 2, "amount": 99}, token=token
    )
    assert wrong[0] == 400 and "amount" in wrong[1]["details"]
    beyond = h.request("POST", "/api/v1/chit/pay", {**pay, "monthIndex": 13}, token=token)
    assert beyond[0] == 400
    code, admin_paid, _ = h.request(
        "POST", "/api/v1/chit/admin/pay", {"userId": uid, "schemeId": sid}, token=admin
    )
    assert code == 201 and admin_paid["data"]["monthIndex"] == 2
    mine = h.request("GET", "/api/v1/chit/my", token=token)[1]["data"][0]
    # enrolment (month 0) and months 1 and 2; month 3 due three months after joining
    assert (mine["monthsPaid"], mine["totalPaid"], mine["pending"]) == (3, 300, 9)
    assert (mine["daysRemaining"], mine["isDue"]) == (91, False)  # 21 Sep -> 21 Dec
    assert mine["user"] == {"name": "Saver", "mobileNumber": "9876543210"}
    h.clock.advance(91 * 86400)
    token = h.request(
        "POST", "/api/v1/auth/login", {"email": "saver@example.com", "password": "password123"}
    )[1]["token"]
    assert h.request("GET", "/api/v1/chit/my", token=token)[1]["data"][0]["isDue"] is True
    admin = h.request(
        "POST", "/api/v1/auth/login", {"email": "admin@shop.test", "password": "password123"}
    )[1]["token"]
    people = h.request("GET", f"/api/v1/chit/schemes/{sid}/participants", token=admin)[1]
    member = people["data"][0]
    assert (member["paidMonths"], member["pending"], member["status"]) == (3, 9, "Active")
    assert member["daysRemaining"] == 0 and member["nextDueDate"] is not None
    assert h.request("DELETE", f"/api/v1/chit/schemes/{sid}", token=admin)[0] == 409


def test_rejection_and_scheme_rules() -> None:
    """Rejected members are notified and cannot pay; bad schemes are 400."""
    h = Harness()
    admin = h.admin()
    sid = _scheme(h, admin)
    token = h.register("no@example.com")
    uid = h.request("GET", "/api/v1/auth/me", token=token)[1]["data"]["_id"]
    h.request(
        "POST",
        "/api/v1/chit/request-join",
        {"schemeId": sid, "name": "N", "mobileNumber": "9876543210", "address": "Y"},
        token=token,
    )
    assert (
        h.request(
            "POST", "/api/v1/chit/admin/reject", {"userId": uid, "schemeId": sid}, token=admin
        )[0]
        == 200
    )
    assert (
        h.request(
            "POST", "/api/v1/chit/admin/reject", {"userId": uid, "schemeId": sid}, token=admin
        )[0]
        == 409
    )
    assert (
        "rejected"
        in h.request("GET", "/api/v1/notifications", token=token)[1]["data"][0]["message"]
    )
    pay = {"schemeId": sid, "amount": 100, "monthIndex": 1}
    assert h.request("POST", "/api/v1/chit/pay", pay, token=token)[0] == 409
    bad = {"name": "X", "totalAmount": 100, "installmentAmount": 200, "durationMonths": 1}
    assert h.request("POST", "/api/v1/chit/schemes", bad, token=admin)[0] == 400
    empty = _scheme(h, admin, name="Empty")
    assert h.request("DELETE", f"/api/v1/chit/schemes/{empty}", token=admin)[0] == 200
