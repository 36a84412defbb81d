"""Time and size of the price lists: the demo catalogue (150 products) and a
large one (2,000), rendered in this process as the server's thread does.

Prints, per catalogue: the time to build the list and its fingerprint (what
every download costs on the reactor thread, cached copy or not), the render
time of the PDF and the .xlsx (median of a few runs), their sizes and the
PDF's page count.

    .venv/bin/python scripts/bench_pricelist.py [--runs N] [--sizes 150,2000]
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
from datetime import date
from typing import Any, Callable

from bson import ObjectId
from pypdf import PdfReader

from crackershop.app.pricesheets import PriceList, price_list, render_pdf, render_xlsx
from crackershop.ops.seed import demo_catalogue

SETTINGS = {
    "aboutUs": {"title": "About CrackerShop"},
    "contact": {"phone": "+91 98765 43210", "email": "shop@example.com", "address": "Sivakasi"},
}


def catalogue(size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``size`` products: the demo catalogue, repeated with numbered names."""
    categories: list[dict[str, Any]] = []
    demo: list[dict[str, Any]] = []
    for category, products in demo_catalogue():
        category = {**category, "_id": ObjectId()}
        categories.append(category)
        demo += [{**p, "_id": ObjectId(), "category": category["_id"]} for p in products]
    products = []
    for i in range(size):
        product = dict(demo[i % len(demo)])
        if i >= len(demo):
            product["name"] = f"{product['name']} No. {i // len(demo) + 1}"
        products.append(product)
    return products, categories


def timed(f: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(runs):
        began = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="150,2000")
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, median of {args.runs}")
    columns = ["products", "list + fingerprint", "PDF render", "PDF size", "pages"]
    columns += ["xlsx render", "xlsx size"]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        products, categories = catalogue(size)

        def build(p: Any = products, c: Any = categories) -> PriceList:
            sheet = price_list(p, c, SETTINGS, date(2026, 10, 15))
            sheet.fingerprint()
            return sheet

        build_s, sheet = timed(build, args.runs)
        pdf_s, pdf = timed(lambda s=sheet: render_pdf(s), args.runs)
        xlsx_s, xlsx = timed(lambda s=sheet: render_xlsx(s), args.runs)
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        figures = [
            f"{size:,}",
            f"{build_s * 1000:.1f} ms",
            f"{pdf_s * 1000:.0f} ms",
            f"{len(pdf) / 1024:.0f} KiB",
            str(pages),
            f"{xlsx_s * 1000:.0f} ms",
            f"{len(xlsx) / 1024:.0f} KiB",
        ]
        print("| " + " | ".join(figures) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
