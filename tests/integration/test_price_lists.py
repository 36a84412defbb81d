"""The app's "Download Price List" through the real server and database:
both files open in a reader and show every active product, and nothing else."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openpyxl
from pypdf import PdfReader

from tests.support import Server, bearer, unique

PDF = "/api/v1/products/download/pdf"
EXCEL = "/api/v1/products/download/excel"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def words(text: str) -> str:
    return " ".join(text.split())


def as_in_pdf(text: str) -> str:
    """Text as the PDF shows it: its standard font has Latin-1 only."""
    return words(text.encode("latin-1", "replace").decode("latin-1"))


def catalogue(c: httpx.Client, admin: str) -> list[dict[str, Any]]:
    """Every product, inactive ones included, as the admin lists them."""
    products: list[dict[str, Any]] = []
    page = 1
    while True:
        r = c.get("/api/v1/products", params={"limit": 100, "page": page}, headers=bearer(admin))
        assert r.status_code == 200, r.text
        products += r.json()["data"]
        if page >= r.json()["pages"]:
            return products
        page += 1


def offer(product: dict[str, Any]) -> Any:
    discount = product.get("discountPrice")
    return discount if discount and 0 < discount < product["price"] else None


def test_price_lists_show_every_active_product_to_anyone(server: Server, admin: str) -> None:
    """Tokenless PDF and .xlsx hold every active product's name and prices, no inactive one."""
    with server.client() as c:
        category = c.post(
            "/api/v1/categories", json={"name": unique("Price List")}, headers=bearer(admin)
        ).json()["data"]["_id"]
        hidden = unique("Withdrawn Rocket")
        long_name = unique("Grand Finale") + " sky shot with a name long enough to wrap in its cell"
        ids = []
        for name, price, discount in ((hidden, 77.7, None), (long_name, 1234.5, 999.99)):
            body = {"name": name, "price": price, "quantity": 9, "category": category}
            if discount is not None:
                body["discountPrice"] = discount
            r = c.post("/api/v1/products", json=body, headers=bearer(admin))
            assert r.status_code == 201, r.text
            ids.append(r.json()["data"]["_id"])
        hidden_id = ids[0]
        r = c.put(
            f"/api/v1/products/{hidden_id}", json={"status": "Inactive"}, headers=bearer(admin)
        )
        assert r.status_code == 200, r.text

        everything = catalogue(c, admin)
        active = [p for p in everything if p.get("status") != "Inactive"]
        inactive = [p for p in everything if p.get("status") == "Inactive"]
        assert len(active) >= 150 and any(p["name"] == hidden for p in inactive)

        pdf = c.get(PDF)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"] == (
            'attachment; filename="CrackerShop_PriceList.pdf"'
        )
        excel = c.get(EXCEL)
        assert excel.status_code == 200 and excel.headers["content-type"] == XLSX
        assert excel.headers["content-disposition"] == (
            'attachment; filename="CrackerShop_Inventory.xlsx"'
        )

        again = c.get(PDF)
        assert again.content == pdf.content and again.headers["etag"] == pdf.headers["etag"]
        unchanged = c.get(EXCEL, headers={"If-None-Match": excel.headers["etag"]})
        assert unchanged.status_code == 304 and unchanged.content == b""

    text = words(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages))
    for p in active:
        shown = [as_in_pdf(p["name"]), words(p.get("pack") or ""), f"{p['price']:,.2f}"]
        if offer(p) is not None:
            shown.append(f"{offer(p):,.2f}")
        assert " ".join(s for s in shown if s) in text, p
    for p in inactive:
        assert as_in_pdf(p["name"]) not in text

    sheet = openpyxl.load_workbook(io.BytesIO(excel.content)).active
    rows = {row[1]: row for row in sheet.iter_rows(min_row=6, values_only=True)}
    assert len(rows) == len({p["name"] for p in active})
    for p in active:
        category_name, _, pack, price, offer_price, stock = rows[p["name"]]
        assert (price, offer_price, stock) == (p["price"], offer(p), p.get("quantity", 0)), p
        assert category_name == ((p.get("category") or {}).get("name") or "Other")
        assert pack == (p.get("pack") or "")
    assert not {p["name"] for p in inactive} & set(rows)
