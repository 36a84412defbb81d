"""The price list: the active catalogue as a PDF (reportlab) and as a
spreadsheet (XlsxWriter).

Pure functions with no I/O and no Twisted: :func:`price_list` turns what was
read from the store into a :class:`PriceList`, and the renderers turn that
into bytes. Rendering is CPU work, so the server runs it in a thread; the
output depends only on the PriceList (no clock, no random ids), so the same
catalogue gives the same bytes in every process.

The PDF uses Helvetica, one of the fonts every PDF reader has, so nothing is
embedded; it has no rupee sign, so amounts are headed "Rs.". Names are
written in Latin-1 (what Helvetica can show); the spreadsheet keeps every
character as stored.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable, Optional

import attr

from crackershop.app.pricing import ZERO, money

UNCATEGORISED = "Other"
DEFAULT_SHOP = "CrackerShop"
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# the product fields a price list reads (the store returns only these)
PRODUCT_FIELDS = ("name", "category", "pack", "price", "discountPrice", "quantity")


@attr.s(auto_attribs=True, frozen=True)
class Line:
    category: str
    name: str
    pack: str
    price: Decimal
    # the price a customer pays when the product is on offer, else None
    offer: Optional[Decimal]
    stock: int


@attr.s(auto_attribs=True, frozen=True)
class PriceList:
    shop: str
    phone: str
    email: str
    address: str
    day: date
    lines: tuple[Line, ...]

    @property
    def contact(self) -> str:
        return "  |  ".join(part for part in (self.phone, self.email, self.address) if part)

    @property
    def generated(self) -> str:
        return f"{self.day.day} {MONTHS[self.day.month - 1]} {self.day.year}"

    def fingerprint(self) -> str:
        """A digest of everything the documents show: equal for equal lists."""
        data = attr.asdict(self, recurse=True, retain_collection_types=False)
        raw = json.dumps(data, default=str, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _stock(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    return max(0, int(value))


def shop_name(title: Any) -> str:
    """The shop's name from its About Us title ("About CrackerShop" by default)."""
    name = _text(title)
    if name.lower().startswith("about "):
        name = name[len("about ") :].strip()
    return name or DEFAULT_SHOP


def price_list(
    products: Iterable[Mapping[str, Any]],
    categories: Iterable[Mapping[str, Any]],
    settings: Mapping[str, Any],
    day: date,
) -> PriceList:
    """The price list of these (active) products, by category then name."""
    names = {c.get("_id"): _text(c.get("name")) for c in categories}
    lines = []
    for product in products:
        price = money(product.get("price"))
        offer = money(product.get("discountPrice"))
        category = names.get(product.get("category")) or ""
        lines.append(
            Line(
                category=category or UNCATEGORISED,
                name=_text(product.get("name")),
                pack=_text(product.get("pack")),
                price=price,
                offer=offer if ZERO < offer < price else None,
                stock=_stock(product.get("quantity")),
            )
        )
    # Products without a known category come last, under "Other".
    lines.sort(
        key=lambda line: (
            line.category == UNCATEGORISED,
            line.category.casefold(),
            line.name.casefold(),
            line.name,
            line.pack,
            line.price,
        )
    )
    about = settings.get("aboutUs") or {}
    contact = settings.get("contact") or {}
    return PriceList(
        shop=shop_name(about.get("title")),
        phone=_text(contact.get("phone")),
        email=_text(contact.get("email")),
        address=_text(contact.get("address")),
        day=day,
        lines=tuple(lines),
    )


def amount(value: Decimal) -> str:
    return f"{value:,.2f}"


# -- PDF


def _latin1(text: str) -> str:
    """Text Helvetica can show, escaped for a reportlab Paragraph."""
    from xml.sax.saxutils import escape

    shown = text.encode("latin-1", "replace").decode("latin-1")
    return escape(shown)


def render_pdf(sheet: PriceList) -> bytes:
    """The price list as an A4 PDF: a header, then one table, category by
    category, its column headings repeated on every page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    base = ParagraphStyle("cell", fontName="Helvetica", fontSize=9, leading=11)
    bold = ParagraphStyle("bold", base, fontName="Helvetica-Bold")
    heading = ParagraphStyle("heading", base, fontName="Helvetica-Bold", fontSize=18, leading=22)
    small = ParagraphStyle("small", base, fontSize=9, leading=12, textColor=colors.HexColor("#444"))

    story: list[Any] = [Paragraph(_latin1(sheet.shop), heading)]
    if sheet.contact:
        story.append(Paragraph(_latin1(sheet.contact), small))
    story.append(Paragraph(f"Price list generated {sheet.generated}", small))
    story.append(Spacer(1, 5 * mm))

    widths = [12 * mm, 76 * mm, 26 * mm, 24 * mm, 24 * mm, 18 * mm]
    padding = 6  # reportlab's default left and right cell padding, in points

    def cell(text: str, width: float, style: ParagraphStyle = base) -> Any:
        # A plain string costs far less to lay out than a Paragraph; only
        # text too wide for its column needs one, to wrap.
        shown = _plain(text)
        if stringWidth(shown, style.fontName, style.fontSize) <= width - 2 * padding:
            return shown
        return Paragraph(_latin1(text), style)

    rows: list[list[Any]] = [
        ["S.No", "Product", "Pack", "Price (Rs.)", "Offer (Rs.)", "Stock"],
    ]
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), base.fontName, base.fontSize, base.leading),
        ("FONT", (0, 0), (-1, 0), bold.fontName, bold.fontSize, bold.leading),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#8b1a1a")),
        ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    current: Optional[str] = None
    for number, line in enumerate(sheet.lines, start=1):
        if line.category != current:
            current = line.category
            at = len(rows)
            # in the product column, not spanning the row: spans make every
            # page break of a long table cost a pass over all its rows
            style.append(("FONT", (0, at), (-1, at), bold.fontName, bold.fontSize, bold.leading))
            style.append(("BACKGROUND", (0, at), (-1, at), colors.HexColor("#f3e3c3")))
            rows.append(["", cell(current, widths[1], bold), "", "", "", ""])
        rows.append(
            [
                str(number),
                cell(line.name, widths[1]),
                cell(line.pack, widths[2]),
                amount(line.price),
                amount(line.offer) if line.offer is not None else "",
                str(line.stock),
            ]
        )
    if not sheet.lines:
        rows.append(["", "No products are on sale at the moment.", "", "", "", ""])
    story.append(LongTable(rows, colWidths=widths, repeatRows=1, style=TableStyle(style)))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(colors.HexColor("#666666"))
        text = f"{_plain(sheet.shop)}  -  price list of {sheet.generated}  -  page {doc.page}"
        canvas.drawCentredString(A4[0] / 2, 8 * mm, text)
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=12 * mm,
        bottomMargin=15 * mm,
        title=f"{_plain(sheet.shop)} price list",
        author=_plain(sheet.shop),
        subject=f"Price list of {sheet.generated}",
        creator=DEFAULT_SHOP,
        # no creation time or random document id: same list, same bytes
        invariant=1,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _plain(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


# -- spreadsheet


def render_xlsx(sheet: PriceList) -> bytes:
    """The price list as one worksheet: the shop's header, then a table with
    numeric amounts, frozen headings and a filter."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    # a fixed creation time, so the same list gives the same file
    book.set_properties(
        {
            "title": f"{sheet.shop} price list",
            "author": sheet.shop,
            "company": sheet.shop,
            "created": datetime.combine(sheet.day, time()),
        }
    )
    ws = book.add_worksheet("Price list")
    title = book.add_format({"bold": True, "font_size": 14})
    head = book.add_format(
        {"bold": True, "font_color": "#FFFFFF", "bg_color": "#8B1A1A", "border": 1}
    )
    money_format = book.add_format({"num_format": "#,##0.00"})
    count = book.add_format({"num_format": "0"})

    ws.write_string(0, 0, sheet.shop, title)
    ws.write_string(1, 0, sheet.contact)
    ws.write_string(2, 0, f"Generated {sheet.generated}")
    top = 4
    columns = ["Category", "Product", "Pack", "Price (₹)", "Offer price (₹)", "Stock"]
    for col, name in enumerate(columns):
        ws.write_string(top, col, name, head)
    widths = [len(name) + 2 for name in columns]
    for i, line in enumerate(sheet.lines, start=top + 1):
        ws.write_string(i, 0, line.category)
        ws.write_string(i, 1, line.name)
        ws.write_string(i, 2, line.pack)
        ws.write_number(i, 3, float(line.price), money_format)
        if line.offer is not None:
            ws.write_number(i, 4, float(line.offer), money_format)
        ws.write_number(i, 5, line.stock, count)
        for col, text in enumerate((line.category, line.name, line.pack)):
            widths[col] = max(widths[col], len(text) + 2)
    for col, width in enumerate(widths):
        ws.set_column(col, col, min(width, 60))
    last = top + max(len(sheet.lines), 1)
    ws.autofilter(top, 0, last, len(columns) - 1)
    ws.freeze_panes(top + 1, 0)
    ws.repeat_rows(top)
    ws.fit_to_pages(1, 0)
    ws.set_footer(f"&C{sheet.shop.replace('&', '&&')} - page &P of &N")
    book.close()
    return out.getvalue()


Renderer = Callable[[PriceList], bytes]
