"""The price list documents, rendered alone: what they show, in which
order, and that a reader can open them."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any

import openpyxl
from bson import ObjectId
from pypdf import PdfReader

from crackershop.app.pricesheets import price_list, render_pdf, render_xlsx, shop_name

DAY = date(2026, 10, 15)
SETTINGS = {
    "aboutUs": {"title": "About Sri Lakshmi Fireworks"},
    "contact": {"phone": "+91 98765 43210", "email": "shop@example.com", "address": "Sivakasi"},
}


def catalogue(count: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rockets = {"_id": ObjectId(), "name": "Rockets"}
    bombs = {"_id": ObjectId(), "name": "bombs"}
    products: list[dict[str, Any]] = [
        {"name": "Whistling Rocket", "price": 300, "discountPrice": 240.5, "quantity": 7,
         "pack": "5 pcs", "category": rockets["_id"]},
        {"name": "Atom Bomb", "price": 40, "quantity": 0, "category": bombs["_id"]},
        {"name": "Baby Rocket", "price": 120, "discountPrice": 120, "category": rockets["_id"]},
        {"name": "Lost & <Found>", "price": 9.999, "category": ObjectId()},
    ]  # fmt: skip
    for i in range(count - 3):
        products.append(
            {"name": f"Rocket {i:04d}", "price": 10 + i, "quantity": i, "category": rockets["_id"]}
        )
    return products, [rockets, bombs]


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_lines_by_category_then_name_with_offers_only_below_the_price() -> None:
    """Lines sort by category (case-blind) then name; unknown categories come last as Other."""
    products, categories = catalogue()
    sheet = price_list(products, categories, SETTINGS, DAY)
    assert [(line.category, line.name) for line in sheet.lines] == [
        ("bombs", "Atom Bomb"),
        ("Rockets", "Baby Rocket"),
        ("Rockets", "Whistling Rocket"),
        ("Other", "Lost & <Found>"),
    ]
    whistling = sheet.lines[2]
    assert (whistling.price, whistling.offer, whistling.stock) == (
        Decimal("300.00"),
        Decimal("240.50"),
        7,
    )
    assert sheet.lines[1].offer is None  # a "discount" equal to the price is no offer
    assert sheet.lines[3].price == Decimal("10.00")
    assert (sheet.shop, sheet.generated) == ("Sri Lakshmi Fireworks", "15 October 2026")


def test_shop_name_from_the_about_us_title() -> None:
    """The default title gives the old name; an empty one falls back to it."""
    assert shop_name("About CrackerShop") == "CrackerShop"
    assert shop_name("  Star  Crackers ") == "Star Crackers"
    assert shop_name("") == shop_name(None) == "CrackerShop"


def test_fingerprint_follows_what_is_shown() -> None:
    """Equal lists share a fingerprint; a price, stock or contact change alters it."""
    products, categories = catalogue()
    first = price_list(products, categories, SETTINGS, DAY).fingerprint()
    assert price_list(products, categories, SETTINGS, DAY).fingerprint() == first
    products[0]["quantity"] = 6
    assert price_list(products, categories, SETTINGS, DAY).fingerprint() != first
    products[0]["quantity"] = 7
    moved = {**SETTINGS, "contact": {"phone": "1"}}
    assert price_list(products, categories, moved, DAY).fingerprint() != first


def test_pdf_shows_header_every_line_and_wraps_across_pages() -> None:
    """A long catalogue makes several pages; every name and amount can be read back."""
    products, categories = catalogue(200)
    products[0]["name"] = "Whistling Rocket with an exceedingly long name " * 3
    sheet = price_list(products, categories, SETTINGS, DAY)
    data = render_pdf(sheet)
    assert data.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(data)).pages) > 3
    text = pdf_text(data)
    assert "Sri Lakshmi Fireworks" in text and "+91 98765 43210" in text
    assert "15 October 2026" in text and "Price (Rs.)" in text
    for line in sheet.lines:
        assert line.name.strip() in text
    assert "300.00 240.50 7" in text and "Lost & <Found> 10.00" in text
    assert "Rocket 0196 206.00 196" in text


def test_documents_are_the_same_bytes_for_the_same_list() -> None:
    """No clock or random id in either file: one catalogue version, one file."""
    products, categories = catalogue()
    sheet = price_list(products, categories, SETTINGS, DAY)
    assert render_pdf(sheet) == render_pdf(sheet)
    assert render_xlsx(sheet) == render_xlsx(sheet)


def test_spreadsheet_has_numbers_a_header_row_frozen_and_filtered() -> None:
    """Amounts are numeric cells formatted as money, under a frozen, filtered heading row."""
    products, categories = catalogue()
    book = openpyxl.load_workbook(
        io.BytesIO(render_xlsx(price_list(products, categories, SETTINGS, DAY)))
    )
    ws = book.active
    assert ws["A1"].value == "Sri Lakshmi Fireworks" and "shop@example.com" in ws["A2"].value
    assert "15 October 2026" in ws["A3"].value
    assert [c.value for c in ws[5]] == [
        "Category", "Product", "Pack", "Price (₹)", "Offer price (₹)", "Stock",
    ]  # fmt: skip
    assert ws.freeze_panes == "A6" and ws.auto_filter.ref == "A5:F9"
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=6)]
    assert rows[2] == ["Rockets", "Whistling Rocket", "5 pcs", 300, 240.5, 7]
    assert rows[1][4] is None
    assert ws["D8"].number_format == "#,##0.00" and ws["F8"].data_type == "n"
    assert ws.column_dimensions["B"].width > ws.column_dimensions["F"].width


def test_an_empty_catalogue_still_renders() -> None:
    """No active product gives a document saying so, and an empty table."""
    sheet = price_list([], [], {}, DAY)
    assert "No products" in pdf_text(render_pdf(sheet))
    ws = openpyxl.load_workbook(io.BytesIO(render_xlsx(sheet))).active
    assert ws["A1"].value == "CrackerShop" and ws.max_row == 5
