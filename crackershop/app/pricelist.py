"""/api/v1/products/download/pdf and /excel: the active catalogue as a price
list, for the app's "Download Price List" (opened in a browser, so public).

Each download reads the catalogue (through the customers' catalogue cache,
so it is as fresh as the product pages) and the settings, and builds the
:class:`PriceList` they make. Its fingerprint names the catalogue version:
the rendered document of that version is kept, so a burst of downloads costs
one render, and requests arriving while it renders wait for that render.
Rendering runs through ``run`` (a thread of the reactor's pool in the
server), one at a time, so it never blocks the reactor or takes every
thread. The fingerprint is also the ETag: a client holding the current copy
gets a 304.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Callable, Optional

import attr
from bson import ObjectId
from twisted.internet.defer import Deferred, DeferredLock, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from crackershop.app.pricesheets import (
    PRODUCT_FIELDS,
    PriceList,
    Renderer,
    price_list,
    render_pdf,
    render_xlsx,
)
from crackershop.app.routing import Call, Reply, Route
from crackershop.store.catalogue import ICatalogue
from crackershop.store.interfaces import IStore

log = Logger()

# ``run(f, *args)``: a Deferred of ``f(*args)``, computed elsewhere
Runner = Callable[..., "Deferred[Any]"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@attr.s(auto_attribs=True, frozen=True)
class Sheet:
    kind: str
    content_type: str
    # the old backend's file names, which users already have on their phones
    filename: str
    render: Renderer


SHEETS: Mapping[str, Sheet] = {
    "pdf": Sheet("pdf", "application/pdf", "CrackerShop_PriceList.pdf", render_pdf),
    "excel": Sheet("excel", XLSX, "CrackerShop_Inventory.xlsx", render_xlsx),
}


@attr.s(auto_attribs=True, frozen=True)
class Built:
    """A price list with what it was built from."""

    products: Any
    categories: Any
    settings: Any
    day: date
    listing: PriceList
    fingerprint: str


def run_in_place(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return maybeDeferred(f, *args)


class Renders:
    """The latest rendered copy of each sheet, by the fingerprint of the
    price list it shows. A render of a version already being rendered is
    never started again: its requests share the one in progress."""

    def __init__(self, run: Runner) -> None:
        self._run = run
        self._one_at_a_time = DeferredLock()
        self._latest: dict[str, tuple[str, bytes]] = {}
        self._pending: dict[tuple[str, str], list[Deferred[bytes]]] = {}

    def get(self, sheet: Sheet, listing: PriceList, fingerprint: str) -> Deferred[bytes]:
        latest = self._latest.get(sheet.kind)
        if latest is not None and latest[0] == fingerprint:
            return succeed(latest[1])
        key = (sheet.kind, fingerprint)
        waiter: Deferred[bytes] = Deferred()
        waiting = self._pending.get(key)
        if waiting is not None:
            waiting.append(waiter)
            return waiter
        self._pending[key] = waiters = [waiter]

        def rendered(data: bytes) -> None:
            del self._pending[key]
            self._latest[sheet.kind] = (fingerprint, data)
            log.info(
                "rendered the {kind} price list: {products} products, {size} bytes",
                kind=sheet.kind,
                products=len(listing.lines),
                size=len(data),
            )
            for w in waiters:
                w.callback(data)  # a waiter cancelled meanwhile ignores this

        def failed(failure: Failure) -> None:
            del self._pending[key]
            for w in waiters:
                w.errback(failure)

        d = self._one_at_a_time.run(self._run, sheet.render, listing)
        d.addCallbacks(rendered, failed)
        return waiter


def etag_matches(header: Optional[bytes], etag: str) -> bool:
    """Whether If-None-Match names this entity tag (weak comparison)."""
    if header is None:
        return False
    text = header.decode("latin-1").strip()
    if text == "*":
        return True
    tags = (t.strip() for t in text.split(","))
    return etag in (t[2:] if t.startswith("W/") else t for t in tags)


class PriceListHandlers:
    def __init__(
        self,
        store: IStore,
        catalogue: ICatalogue,
        clock: IReactorTime,
        run: Optional[Runner] = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.clock = clock
        self.renders = Renders(run or run_in_place)
        self._last: Optional[Built] = None

    def routes(self) -> list[Route]:
        p = "/api/v1/products/download"
        return [
            Route(
                "GET",
                f"{p}/pdf",
                self.pdf,
                "The price list of the active catalogue as a PDF",
                operation="downloadPriceListPdf",
                tag="products",
                statuses=(304,),
                produces=(SHEETS["pdf"].content_type,),
            ),
            Route(
                "GET",
                f"{p}/excel",
                self.excel,
                "The price list of the active catalogue as a spreadsheet (.xlsx)",
                operation="downloadPriceListExcel",
                tag="products",
                statuses=(304,),
                produces=(SHEETS["excel"].content_type,),
            ),
        ]

    async def pdf(self, call: Call) -> Reply:
        return await self._download(call, SHEETS["pdf"])

    async def excel(self, call: Call) -> Reply:
        return await self._download(call, SHEETS["excel"])

    async def current(self) -> tuple[PriceList, str]:
        """The price list of the catalogue as it is now, and its fingerprint."""
        products = await self.catalogue.all_active(PRODUCT_FIELDS)
        ids = {p["category"] for p in products if isinstance(p.get("category"), ObjectId)}
        categories = await self.catalogue.categories_by_ids(list(ids))
        settings = await self.store.settings.get()
        # the server's local date: the shop's, where the shop runs its server
        day = datetime.fromtimestamp(self.clock.seconds()).date()
        # While the catalogue cache hands out the same answers, the list they
        # make is the same: building it again (tens of ms for thousands of
        # products, on the reactor thread) is skipped.
        last = self._last
        if (
            last is not None
            and last.products is products
            and last.categories is categories
            and last.settings == settings
            and last.day == day
        ):
            return last.listing, last.fingerprint
        listing = price_list(products, categories, settings, day)
        self._last = Built(products, categories, settings, day, listing, listing.fingerprint())
        return listing, self._last.fingerprint

    async def _download(self, call: Call, sheet: Sheet) -> Reply:
        listing, fingerprint = await self.current()
        etag = f'"{sheet.kind}-{fingerprint[:32]}"'
        headers = {
            "ETag": etag,
            # stock changes with every sale: ask again each time (304 when unchanged)
            "Cache-Control": "no-cache",
            "Content-Disposition": f'attachment; filename="{sheet.filename}"',
        }
        if etag_matches(call.request.getHeader(b"if-none-match"), etag):
            return Reply(b"", 304, headers, content_type=sheet.content_type)
        body = await self.renders.get(sheet, listing, fingerprint)
        headers["Content-Length"] = str(len(body))
        return Reply(body, 200, headers, content_type=sheet.content_type)
