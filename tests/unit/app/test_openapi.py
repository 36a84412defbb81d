"""/openapi.json describes every operation well enough to generate typed
clients, from the same models the tests check every answer against."""

from __future__ import annotations

import re
from typing import Any, Optional

import attr
import pytest

from crackershop.app.conformance import Conformance, Mismatch
from crackershop.app.openapi import document, error_statuses
from crackershop.app.responses import Product, Success
from crackershop.app.routing import Call, Reply, Route
from tests.unit.app.harness import Harness

TAGS = {
    "auth",
    "products",
    "categories",
    "orders",
    "users",
    "settings",
    "banners",
    "notifications",
    "chit",
    "dashboard",
    "uploads",
    "service",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    code, body, _ = Harness().request("GET", "/openapi.json")
    assert code == 200
    return body


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref: Optional[str] = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_every_operation_is_named_tagged_and_summarised(spec: dict[str, Any]) -> None:
    """A tag per resource, an operationId a person would write, a summary."""
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids)) > 60
    for method, path, op in operations(spec):
        assert op["tags"][0] in TAGS, (method, path)
        assert re.fullmatch(r"[a-z][a-zA-Z]+", op["operationId"]), (method, path)
        assert op["summary"], (method, path)
    by_id = {op["operationId"]: (m, p, op) for m, p, op in operations(spec)}
    assert by_id["login"][:2] == ("POST", "/api/v1/auth/login")
    assert by_id["login"][2]["tags"] == ["auth"]
    assert by_id["listProducts"][:2] == ("GET", "/api/v1/products")
    assert by_id["createOrder"][:2] == ("POST", "/api/v1/orders")
    assert by_id["updateOrderStatus"][:2] == ("PUT", "/api/v1/orders/{id}/status")


def test_every_status_has_its_response_schema(spec: dict[str, Any]) -> None:
    """Successes name their model, errors the envelope, a 429 its rate-limit headers."""
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if status == "304":
                assert "content" not in response
                continue
            content = response["content"]
            if status.startswith("2"):
                for schema in (c["schema"] for c in content.values()):
                    assert "$ref" in schema or schema["type"] == "string", (method, path)
            else:
                assert content["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, (method, path, status)
            if status == "429":
                headers = response["headers"]
                assert headers["Retry-After"]["required"] is True
                assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers)
    login = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "429" in login and "401" in login
    assert login["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Session")
    page = spec["paths"]["/api/v1/products"]["get"]["responses"]["200"]
    model = resolve(spec, page["content"]["application/json"]["schema"])
    assert set(model["required"]) >= {"count", "total", "pages", "currentPage", "data"}
    assert model["properties"]["data"]["items"] == {"$ref": "#/components/schemas/Product"}


def test_the_real_models_are_in_the_document(spec: dict[str, Any]) -> None:
    """User, Product, Order, Category, Banner, Notification, Scheme, Settings, Error."""
    schemas = spec["components"]["schemas"]
    for name in (
        "User",
        "Product",
        "Order",
        "Category",
        "Banner",
        "Notification",
        "Scheme",
        "Settings",
        "Error",
        "PaginatedProduct",
    ):
        assert name in schemas, name
    assert "_id" in schemas["Product"]["required"]
    # generators name their classes by title
    assert all(schema["title"] == name for name, schema in schemas.items() if "title" in schema)
    assert schemas["SuccessListAddress"]["title"] == "SuccessListAddress"
    assert schemas["Order"]["properties"]["shippingAddress"]["type"] == "string"
    # answers stay open to fields a client does not know
    assert "additionalProperties" not in schemas["Product"]
    # request bodies refuse them, as the server does
    assert schemas["LoginBody"]["additionalProperties"] is False


def test_the_order_body_says_what_the_app_sends(spec: dict[str, Any]) -> None:
    """The app's ignored figures are typed; the address is text or an object."""
    schemas = spec["components"]["schemas"]
    body = schemas["OrderBody"]["properties"]
    assert body["totalPrice"]["type"] == "number"
    kinds = [
        option.get("type") or option.get("$ref") for option in body["shippingAddress"]["anyOf"]
    ]
    assert kinds == ["string", "#/components/schemas/ShippingAddressBody"]
    line = schemas["OrderLineBody"]["properties"]
    assert (line["name"]["type"], line["price"]["type"]) == ("string", "number")
    create = spec["paths"]["/api/v1/orders"]["post"]
    assert create["requestBody"]["required"] is True
    assert create["parameters"][0]["name"] == "Idempotency-Key"


def test_image_routes_describe_a_json_body_and_a_form(spec: dict[str, Any]) -> None:
    """Files are binary parts (a list where several), text fields strings."""
    content = spec["paths"]["/api/v1/products"]["post"]["requestBody"]["content"]
    assert content["application/json"]["schema"]["$ref"].endswith("/ProductBody")
    form = resolve(spec, content["multipart/form-data"]["schema"])
    props = form["properties"]
    assert props["images"] == {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "maxItems": 5,
    }
    assert props["price"]["type"] == "string"
    assert props["isFeatured"] == {"type": "string", "enum": ["true", "false"]}
    assert props["existingImages"] == {"type": "array", "items": {"type": "string"}}
    assert set(form["required"]) == {"name", "category", "price"}
    register = spec["paths"]["/api/v1/auth/register"]["post"]["requestBody"]["content"]
    avatar = resolve(spec, register["multipart/form-data"]["schema"])["properties"]["avatar"]
    assert avatar == {"type": "string", "format": "binary"}


def test_downloads_list_their_types_and_octet_stream(spec: dict[str, Any]) -> None:
    """Images and price lists: their own types, and the one generators read."""
    for path, kind in (
        ("/uploads/{name}", "image/png"),
        ("/api/v1/products/download/pdf", "application/pdf"),
    ):
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert kind in content and "application/octet-stream" in content
        assert content[kind]["schema"] == {"type": "string", "format": "binary"}


def answering(body: Any, status: int = 200) -> Route:
    """A route answering ``body`` with ``status``, declared to answer a product."""

    async def answer(call: Call) -> Reply:
        return Reply(body, status)

    return Route("GET", "/x/{id}", answer, "x", operation="x", response=Success[Product])


PRODUCT = {
    "_id": "0" * 24,
    "name": "Sparkler",
    "price": 120,
    "discountPrice": 0,
    "quantity": 5,
    "category": None,
    "images": [],
    "description": "",
    "pack": "",
    "videoUrl": "",
    "isFeatured": False,
    "isDiwaliSpecial": False,
    "status": "Active",
    "createdAt": "2025-10-01T00:00:00.000Z",
    "updatedAt": "2025-10-01T00:00:00.000Z",
}


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"success": True, "data": PRODUCT}, 200, None),
        ({"success": True, "data": {**PRODUCT, "cost": 3}}, 200, "data.cost"),
        (
            {"success": True, "data": {k: v for k, v in PRODUCT.items() if k != "price"}},
            200,
            "data.price",
        ),
        ({"success": True, "data": {**PRODUCT, "quantity": "5"}}, 200, "data.quantity"),
        ({"success": False, "error": "No", "code": "conflict"}, 409, "does not declare"),
        ({"success": False, "error": "No", "code": "not_found"}, 404, None),
        ({"success": False, "error": "No"}, 404, "code"),
    ],
)
def test_an_answer_its_route_does_not_declare_is_refused(
    body: Any, status: int, problem: Optional[str]
) -> None:
    """A field added, missing or mistyped, or an undeclared status, is a Mismatch."""
    h = Harness()
    h.app.router.add(answering(body, status))  # type: ignore[attr-defined]
    if problem is None:
        h.request("GET", "/x/1")
        return
    with pytest.raises(Mismatch, match=re.escape(problem)):
        h.request("GET", "/x/1")


def test_a_literal_path_is_matched_before_a_parameter() -> None:
    """/orders/myorders is its own route, not /orders/{id}."""
    routes = Harness().app.router.routes  # type: ignore[attr-defined]
    found = Conformance(routes).route_for("GET", "/api/v1/orders/myorders")
    assert found is not None and found.operation == "listMyOrders"
    assert 409 not in error_statuses(found)  # a read: nothing to conflict with


def test_the_document_is_built_from_the_route_table() -> None:
    """A route without a declared operation still gets an id; one with gets its own."""
    routes = [
        attr.evolve(answering({}), path="/a/{id}", operation="getA"),
        attr.evolve(answering({}), method="POST", path="/b", operation=""),
    ]
    doc = document(routes)
    assert doc["paths"]["/a/{id}"]["get"]["operationId"] == "getA"
    assert doc["paths"]["/b"]["post"]["operationId"] == "POST_b"
    assert "SuccessProduct" in doc["components"]["schemas"]
