"""Typed clients generated from the served /openapi.json work: a Python
client (openapi-python-client) runs a shop flow against the real server,
and TypeScript types (openapi-typescript) type-check a file that uses them.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support import BIN, ROOT, Server, tool, unique

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PACKAGE = "shop_client"


def served_document(server: Server, where: Path) -> Path:
    with server.client() as c:
        r = c.get("/openapi.json")
        assert r.status_code == 200, r.text
    path = where / "openapi.json"
    path.write_text(json.dumps(r.json()))
    return path


@pytest.fixture
def client_package(server: Server, tmp_path: Path) -> Iterator[Any]:
    """The Python client generated from the served document, imported."""
    pytest.importorskip(
        "openapi_python_client",
        reason="openapi-python-client needs Python 3.11+ (the test extra installs it there)",
    )
    document = served_document(server, tmp_path)
    env = dict(os.environ)
    # the generator formats its output with ruff, found on PATH
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(
        [
            tool("openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # a part of the document it cannot read is left out of the client, with a warning
    assert "Warning" not in output and "WARNING" not in output, output
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def modules(package: ModuleType, sub: str) -> list[str]:
    base = Path(package.__file__ or "").parent / sub
    return sorted(
        str(p.relative_to(base.parent)) for p in base.rglob("*.py") if p.name != "__init__.py"
    )


def test_a_generated_python_client_runs_a_shop_flow(
    client_package: Any, server: Server, admin: str
) -> None:
    """register, log in, list typed products, order, read typed orders, a typed error."""
    for name in modules(client_package, "api"):
        importlib.import_module(f"{PACKAGE}." + name[:-3].replace("/", "."))
    m = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")

    def call(name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{name}")

    register, login = call("auth.register"), call("auth.login")
    list_products, get_upload = call("products.list_products"), call("uploads.get_upload")
    create_order, list_my_orders = call("orders.create_order"), call("orders.list_my_orders")
    say = sys.stdout.write

    anonymous = client_package.Client(base_url=server.url, raise_on_unexpected_status=True)
    email = unique("typed") + "@example.com"
    # multipart: the sign-up form with an avatar file
    created = register.sync_detailed(
        client=anonymous,
        body=m.RegisterForm(
            name="Typed Client",
            email=email,
            password="password123",
            mobile_number="9876543210",
            avatar=types.File(payload=PNG, file_name="me.png", mime_type="image/png"),
        ),
    )
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, m.Session)
    say(f"\nregister -> {created.status_code} {type(created.parsed).__name__}")
    say(f" avatar {created.parsed.data.avatar.rsplit('/', 1)[-1]}\n")

    session = login.sync(client=anonymous, body=m.LoginBody(email=email, password="password123"))
    assert isinstance(session, m.Session)
    assert isinstance(session.data, m.User) and session.data.email == email
    say(f"login -> {type(session).__name__}: {session.data.name} ({session.data.role})\n")
    customer = client_package.AuthenticatedClient(base_url=server.url, token=session.token)

    avatar = get_upload.sync(name=session.data.avatar.rsplit("/", 1)[-1], client=anonymous)
    assert isinstance(avatar, types.File) and avatar.payload.read() == PNG

    page = list_products.sync(client=customer, limit=20, sort_by=m.ListProductsSortBy.PRICE)
    assert isinstance(page, m.PaginatedProduct)
    assert page.data and all(isinstance(p, m.Product) for p in page.data)
    say(
        f"listProducts -> {type(page).__name__}: {page.count} of {page.total},"
        f" data[0] {type(page.data[0]).__name__} {page.data[0].name!r} at {page.data[0].price}\n"
    )
    product = next(p for p in page.data if p.quantity >= 50)
    unit = product.discount_price if 0 < product.discount_price < product.price else product.price
    qty = max(1, math.ceil(100 / unit))
    placed = create_order.sync_detailed(
        client=customer,
        body=m.OrderBody(
            order_items=[
                # the app's line: its own name, image and list price, ignored
                m.OrderLineBody(product=product.field_id, qty=qty, name="x", price=0.01)
            ],
            shipping_address="12 Lake Road, Sivakasi\nPhone: 9876543210",
            payment_method="Requested",
            total_price=1.0,
        ),
        idempotency_key=unique("key"),
    )
    assert placed.status_code == 201, placed.content
    assert isinstance(placed.parsed, m.SuccessOrder)
    order = placed.parsed.data
    assert isinstance(order, m.Order) and order.order_items[0].name == product.name
    say(
        f"createOrder -> {placed.status_code} {type(order).__name__} {order.field_id}:"
        f" {qty} x {product.name!r}, total {order.total_price}, {order.order_status}\n"
    )

    mine = list_my_orders.sync(client=customer)
    assert isinstance(mine, m.ListingOrder)
    assert all(isinstance(o, m.Order) for o in mine.data)
    assert [o.field_id for o in mine.data] == [order.field_id]
    assert isinstance(mine.data[0].user, m.OrderOwner) and mine.data[0].user.email == email
    say(f"listMyOrders -> {type(mine).__name__}: {mine.count} {type(mine.data[0]).__name__}\n")

    refused = create_order.sync_detailed(
        client=customer,
        body=m.OrderBody(
            order_items=[m.OrderLineBody(product=product.field_id, qty=0)],
            shipping_address="12 Lake Road",
            payment_method="Requested",
        ),
    )
    assert refused.status_code == 400
    error = refused.parsed
    assert isinstance(error, m.Error), refused.content
    assert error.code == "validation_error" and "orderItems.0.qty" in error.details.to_dict()
    say(f"createOrder (qty 0) -> {refused.status_code} {type(error).__name__}: {error.error}\n")


def test_typescript_types_from_the_document_type_check(server: Server, tmp_path: Path) -> None:
    """openapi-typescript's types of the document describe the shop: tsc
    accepts code that uses them as the app does and refuses a wrong body."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (.ci/run installs them with apt-get)")
    tools = Path(
        os.environ.get("CRACKERSHOP_NODE_TOOLS")
        or Path.home() / ".cache" / "crackershop" / "node-tools"
    )
    installed = subprocess.run(
        [str(ROOT / "scripts" / "node-tools"), str(tools)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    document = served_document(server, tmp_path)
    bin_dir = tools / "node_modules" / ".bin"
    generated = subprocess.run(
        [str(bin_dir / "openapi-typescript"), str(document), "-o", str(tmp_path / "api.d.ts")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    (tmp_path / "shop.ts").write_text(SHOP_TS)
    checked = subprocess.run(
        [
            str(bin_dir / "tsc"),
            "--noEmit",
            "--strict",
            "--target",
            "es2020",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "shop.ts",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


SHOP_TS = textwrap.dedent(
    """\
    import type { components, paths } from "./api";

    type Schemas = components["schemas"];
    type Product = Schemas["Product"];
    type Order = Schemas["Order"];
    type OrderBody = Schemas["OrderBody"];
    type LoginAnswer =
        paths["/api/v1/auth/login"]["post"]["responses"][200]["content"]["application/json"];
    type ProductPage =
        paths["/api/v1/products"]["get"]["responses"][200]["content"]["application/json"];
    type Refusal =
        paths["/api/v1/orders"]["post"]["responses"][400]["content"]["application/json"];
    type Limited = paths["/api/v1/auth/login"]["post"]["responses"][429]["headers"];

    export function sellingPrice(p: Product): number {
        return p.discountPrice > 0 && p.discountPrice < p.price ? p.discountPrice : p.price;
    }

    export function stockLabel(page: ProductPage): string[] {
        return page.data.map((p) => (p.quantity === 0 ? "out" : p.quantity < 10 ? "low" : "in"));
    }

    export function customerName(order: Order): string {
        return typeof order.user === "string" ? "Guest" : order.user.name;
    }

    export function storedUser(answer: LoginAnswer): [string, boolean] {
        return [answer.token, answer.data.role === "admin"];
    }

    export function reason(error: Refusal): string {
        return error.error || `Error: ${error.code}`;
    }

    export function retryAfter(headers: Limited): number {
        return headers["Retry-After"];
    }

    // the app's checkout body: its own figures and a one-line address
    export const fromTheApp: OrderBody = {
        orderItems: [{ product: "64b000000000000000000001", qty: 2, name: "Sparkler", price: 120 }],
        shippingAddress: "12 Lake Road\\nPhone: 9876543210",
        paymentMethod: "Requested",
        itemsPrice: 240,
        discountPrice: 40,
        shippingPrice: 50,
        otherFees: 0,
        taxPrice: 0,
        totalPrice: 250,
    };

    export const withAnAddress: OrderBody = {
        orderItems: [{ product: "64b000000000000000000001", qty: 1 }],
        shippingAddress: { address: "12 Lake Road", pincode: "626123", phone: "9876543210" },
        paymentMethod: "Cash on Delivery",
    };

    // @ts-expect-error an order needs its shipping address
    export const noAddress: OrderBody = { orderItems: [], paymentMethod: "Requested" };

    // @ts-expect-error a status is one of the order's states
    export const badStatus: Order["orderStatus"] = "Lost";
    """
)
