"""The price-list downloads through the app: public, named as the old
backend named them, showing the active catalogue, and rendered once per
catalogue version however many ask."""

from __future__ import annotations

import io
from typing import Any, Callable, Optional

import openpyxl
from pypdf import PdfReader
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed

from crackershop.app.pricelist import PriceListHandlers
from crackershop.store.catalogue import CachedCatalogue
from tests.unit.app.harness import Harness

PDF = "/api/v1/products/download/pdf"
EXCEL = "/api/v1/products/download/excel"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Renderer:
    """The thread runner: counts what it is asked to run, and runs it at
    once or (held) when released."""

    def __init__(self, held: bool = False) -> None:
        self.held = held
        self.calls: list[str] = []
        self.waiting: list[tuple[Deferred[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self.failing = False

    def __call__(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        self.calls.append(f.__name__)
        if self.failing:
            return fail(RuntimeError("renderer broke"))
        if not self.held:
            return succeed(f(*args))
        d: Deferred[Any] = Deferred()
        self.waiting.append((d, f, args))
        return d

    def release(self) -> None:
        waiting, self.waiting = self.waiting, []
        for d, f, args in waiting:
            d.callback(f(*args))


def run(h: Harness, coro: Any) -> Any:
    results: list[Any] = []
    ensureDeferred(coro).addBoth(results.append)
    assert results, "did not finish synchronously"
    return results[0]


def start(h: Harness, path: str, headers: Optional[dict[str, str]] = None) -> list[Any]:
    """Send a GET; the returned list gets (response, body) when it is answered."""
    results: list[Any] = []
    d = h.treq.get("http://shop.test" + path, headers=headers or {})
    d.addCallback(lambda r: h.treq.content(r).addCallback(lambda c: results.append((r, c))))
    d.addErrback(results.append)
    h.treq.flush()
    return results


def download(h: Harness, path: str, headers: Optional[dict[str, str]] = None) -> tuple[Any, bytes]:
    results = start(h, path, headers)
    assert results and isinstance(results[0], tuple), results
    response, body = results[0]
    return response, body


def header(response: Any, name: str) -> Optional[str]:
    values = response.headers.getRawHeaders(name)
    return values[0] if values else None


def shop(renderer: Optional[Renderer] = None) -> Harness:
    h = Harness(run_in_thread=renderer) if renderer else Harness()
    run(h, h.store.settings.update({"aboutUs": {"title": "About Star Crackers"}}))
    run(h, h.store.settings.update({"contact": {"phone": "044 2345 6789", "email": "a@b.in"}}))
    rockets = run(h, h.store.categories.create({"name": "Rockets", "status": "Active"}))
    flowers = run(h, h.store.categories.create({"name": "Flower Pots", "status": "Active"}))
    for name, price, offer, category, status in [
        ("Whistling Rocket", 300.0, 240.0, rockets, "Active"),
        ("Baby Rocket", 120.0, None, rockets, "Active"),
        ("Flower Pot Big", 99.5, 80.25, flowers, "Active"),
        ("Withdrawn Bomb", 55.0, None, rockets, "Inactive"),
    ]:
        doc = {"name": name, "price": price, "quantity": 12, "pack": "5 pcs"}
        doc.update(category=category["_id"], status=status, description=f"{name}!")
        if offer is not None:
            doc["discountPrice"] = offer
        run(h, h.store.products.create(doc))
    return h


def product_id(h: Harness, name: str) -> Any:
    return next(d["_id"] for d in h.store.products.docs.values() if d["name"] == name)


def test_both_downloads_are_public_with_the_old_file_names() -> None:
    """No token: 200, the document's type, and the old backend's attachment names."""
    h = shop()
    response, body = download(h, PDF)
    assert response.code == 200 and body.startswith(b"%PDF-")
    assert header(response, "content-type") == "application/pdf"
    assert header(response, "content-disposition") == (
        'attachment; filename="CrackerShop_PriceList.pdf"'
    )
    assert response.length == len(body)
    response, body = download(h, EXCEL)
    assert response.code == 200 and body.startswith(b"PK")
    assert header(response, "content-type") == XLSX
    assert header(response, "content-disposition") == (
        'attachment; filename="CrackerShop_Inventory.xlsx"'
    )


def test_the_pdf_lists_every_active_product_and_no_inactive_one() -> None:
    """Each active product's name and prices are in the PDF, with the shop's header."""
    h = shop()
    _, body = download(h, PDF)
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(body)).pages)
    assert "Star Crackers" in text and "044 2345 6789" in text and "a@b.in" in text
    assert "Flower Pots 1 Flower Pot Big 5 pcs 99.50 80.25 12" in text
    assert "Rockets 2 Baby Rocket 5 pcs 120.00 12" in text
    assert "3 Whistling Rocket 5 pcs 300.00 240.00 12" in text
    assert "Withdrawn" not in text and "55.00" not in text


def test_the_spreadsheet_lists_every_active_product_as_numbers() -> None:
    """Each active product is a row with numeric prices and stock; no inactive one."""
    h = shop()
    _, body = download(h, EXCEL)
    ws = openpyxl.load_workbook(io.BytesIO(body)).active
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=6)]
    assert rows == [
        ["Flower Pots", "Flower Pot Big", "5 pcs", 99.5, 80.25, 12],
        ["Rockets", "Baby Rocket", "5 pcs", 120, None, 12],
        ["Rockets", "Whistling Rocket", "5 pcs", 300, 240, 12],
    ]
    assert ws["A1"].value == "Star Crackers"


def test_repeat_downloads_reuse_one_render_until_the_catalogue_changes() -> None:
    """The second download is the same bytes without a render; a price change renders anew."""
    renderer = Renderer()
    h = shop(renderer)
    _, first = download(h, PDF)
    _, again = download(h, PDF)
    assert again == first and renderer.calls == ["render_pdf"]
    download(h, EXCEL)
    download(h, EXCEL)
    assert renderer.calls == ["render_pdf", "render_xlsx"]
    # a field the price list does not show changes nothing
    run(h, h.store.products.update(product_id(h, "Baby Rocket"), {"description": "new"}))
    assert download(h, PDF)[1] == first and len(renderer.calls) == 2
    run(h, h.store.products.update(product_id(h, "Baby Rocket"), {"price": 130.0}))
    _, changed = download(h, PDF)
    assert changed != first and renderer.calls[-1] == "render_pdf" and len(renderer.calls) == 3
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(changed)).pages)
    assert "130.00" in text


def test_concurrent_downloads_of_one_version_share_one_render() -> None:
    """Requests arriving while a version renders wait for that render, not their own."""
    renderer = Renderer(held=True)
    h = shop(renderer)
    pending = [start(h, PDF) for _ in range(3)]
    assert renderer.calls == ["render_pdf"] and not any(pending)
    renderer.release()
    h.treq.flush()
    bodies = {r[0][1] for r in pending}
    assert len(bodies) == 1 and all(r[0][0].code == 200 for r in pending)
    assert renderer.calls == ["render_pdf"]


def test_a_client_holding_the_current_copy_gets_304() -> None:
    """If-None-Match with the ETag answers 304 with no body; after a change, 200."""
    h = shop()
    response, _ = download(h, EXCEL)
    etag = header(response, "etag")
    assert etag and etag.startswith('"excel-')
    response, body = download(h, EXCEL, {"If-None-Match": f'"other", W/{etag}'})
    assert response.code == 304 and body == b""
    run(h, h.store.products.update(product_id(h, "Baby Rocket"), {"quantity": 11}))
    response, body = download(h, EXCEL, {"If-None-Match": etag})
    assert response.code == 200 and body.startswith(b"PK")
    assert header(response, "etag") != etag


def test_a_failed_render_is_an_error_and_is_not_kept() -> None:
    """A render that fails answers the JSON 500 envelope; the next download renders again."""
    renderer = Renderer()
    renderer.failing = True
    h = shop(renderer)
    response, body = download(h, PDF)
    assert response.code == 500 and b'"success":false' in body
    renderer.failing = False
    response, body = download(h, PDF)
    assert response.code == 200 and body.startswith(b"%PDF-")
    assert renderer.calls == ["render_pdf", "render_pdf"]


def test_the_downloads_are_in_the_api_document() -> None:
    """Both routes are documented as public binary downloads of the products tag."""
    h = shop()
    code, spec, _ = h.request("GET", "/openapi.json")
    assert code == 200
    for path, kind in ((PDF, "application/pdf"), (EXCEL, XLSX)):
        operation = spec["paths"][path]["get"]
        assert operation["tags"] == ["products"]
        assert kind in operation["responses"]["200"]["content"]
        assert "304" in operation["responses"]


def test_the_list_is_built_once_while_the_catalogue_cache_answers_the_same() -> None:
    """Within the catalogue cache's bound the built list is reused; after it, rebuilt."""
    h = shop()
    handlers = PriceListHandlers(h.store, CachedCatalogue(h.store, h.clock, 5.0), h.clock)
    first, fingerprint = run(h, handlers.current())
    run(h, h.store.products.update(product_id(h, "Baby Rocket"), {"price": 130.0}))
    again = run(h, handlers.current())
    assert again[0] is first and again[1] == fingerprint
    h.clock.advance(5.0)
    fresh, changed = run(h, handlers.current())
    assert fresh is not first and changed != fingerprint
    assert any(line.price == 130 for line in fresh.lines)
