"""/api/v1/settings over the in-memory store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.app.harness import Harness


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_defaults_are_created_when_missing(h: Harness) -> None:
    """GET returns the API's defaults, creating the document once."""
    code, body, _ = h.request("GET", "/api/v1/settings")
    assert code == 200
    data = body["data"]
    assert data["shipping"]["baseFee"] == 50 and data["shipping"]["freeShippingAbove"] == 500
    assert data["fees"] == {"packagingFee": 0, "handlingFee": 0, "taxRate": 0, "description": ""}
    assert data["orderSettings"]["minimumOrderAmount"] == 100
    assert data["aboutUs"]["title"] == "About CrackerShop"
    assert h.request("GET", "/api/v1/settings/about-us")[1]["data"]["title"] == "About CrackerShop"
    order = h.request("GET", "/api/v1/settings/order-settings")[1]["data"]
    assert order["minimumOrderAmount"] == 100
    assert len(h.store.settings.docs) == 1


def test_admin_updates_field_by_field(h: Harness) -> None:
    """PUT /shipping changes only the given fields; PUT / changes several parts."""
    admin = h.admin()
    code, body, _ = h.request("PUT", "/api/v1/settings/shipping", {"baseFee": 40}, token=admin)
    assert code == 200 and body["data"]["shipping"]["baseFee"] == 40
    assert body["data"]["shipping"]["freeShippingAbove"] == 500
    code, body, _ = h.request(
        "PUT",
        "/api/v1/settings",
        {"fees": {"taxRate": 12.5}, "contact": {"phone": "+919876543210"}},
        token=admin,
    )
    assert code == 200 and body["data"]["fees"]["taxRate"] == 12.5
    assert body["data"]["contact"]["phone"] == "+919876543210"
    assert body["data"]["shipping"]["baseFee"] == 40
    code, body, _ = h.request(
        "PUT", "/api/v1/settings/about-us", {"title": "Sivakasi Crackers"}, token=admin
    )
    assert code == 200 and body["data"]["aboutUs"]["title"] == "Sivakasi Crackers"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("shipping", {"baseFee": -1}, "baseFee"),
        ("shipping", {"baseFee": "50"}, "baseFee"),
        ("shipping", {"freeShippingAbove": 10.001}, "freeShippingAbove"),
        ("fees", {"taxRate": 101}, "taxRate"),
        ("fees", {"packagingFee": None}, "packagingFee"),
        ("fees", {"surcharge": 5}, "surcharge"),
        ("order-settings", {"minimumOrderAmount": True}, "minimumOrderAmount"),
        ("about-us", {"title": "x" * 201}, "title"),
        ("", {"shipping": {"baseFee": -5}}, "shipping.baseFee"),
        ("", {}, "body"),
        ("shipping", {}, "body"),
    ],
)
def test_bad_settings_are_400_and_change_nothing(
    h: Harness, path: str, body: dict[str, Any], field: str
) -> None:
    """Each bad field is a 400 naming it; the document is unchanged."""
    admin = h.admin()
    before = h.request("GET", "/api/v1/settings")[1]["data"]
    url = "/api/v1/settings" + (f"/{path}" if path else "")
    code, reply, _ = h.request("PUT", url, body, token=admin)
    assert code == 400 and field in reply["details"], reply
    assert h.request("GET", "/api/v1/settings")[1]["data"] == before


def test_only_admins_change_settings(h: Harness) -> None:
    """Customers get 403 and anonymous callers 401 on every PUT."""
    customer = h.register("c@example.com")
    for path in ("", "/about-us", "/shipping", "/fees", "/order-settings"):
        url = "/api/v1/settings" + path
        assert h.request("PUT", url, {"x": 1}, token=customer)[0] == 403
        assert h.request("PUT", url, {"x": 1})[0] == 401
