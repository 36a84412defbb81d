"""Figures for the admin dashboard, computed in the database by aggregation
pipelines (never by loading every order), and the same figures computed by
brute force over the in-memory store: the contract test holds the two equal.

An order counts once it is placed (not while being placed, not a failed
placement); revenue counts paid orders that were not cancelled.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

from zope.interface import Interface, implementer

from crackershop.orders.states import CANCELLED, HIDDEN, REQUESTED
from crackershop.store.interfaces import Document
from crackershop.store.mongo import Mongo

RECENT_DAYS = 30


class IDashboard(Interface):
    async def stats(now: datetime) -> dict[str, Any]:
        """Counts of orders, products and users, and revenue."""

    async def sales(since: datetime) -> builtins.list[dict[str, Any]]:
        """Paid revenue per UTC day since ``since``: [{date, revenue}], days with sales only."""

    async def top_products(limit: int) -> builtins.list[dict[str, Any]]:
        """Best sellers by units in placed, uncancelled orders."""


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _money(value: Any) -> float:
    return round(float(value or 0), 2)


PLACED = {"orderStatus": {"$nin": list(HIDDEN)}}
SOLD = {"orderStatus": {"$nin": [*HIDDEN, CANCELLED]}}
PAID = {"isPaid": True, "orderStatus": {"$nin": [*HIDDEN, CANCELLED]}}


@implementer(IDashboard)
class MongoDashboard:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo
        self.orders = mongo.collection("orders")
        self.products = mongo.collection("products")
        self.users = mongo.collection("users")

    async def _aggregate(self, coll: Any, pipeline: builtins.list[Document]) -> builtins.list[Any]:
        result: builtins.list[Any] = await self.mongo.run(lambda: coll.aggregate(pipeline))
        return result

    async def _count(self, coll: Any, filter: Document) -> int:
        n: int = await self.mongo.run(lambda: coll.count_documents(filter))
        return n

    async def stats(self, now: datetime) -> dict[str, Any]:
        by_status = await self._aggregate(
            self.orders, [{"$match": PLACED}, {"$group": {"_id": "$orderStatus", "n": {"$sum": 1}}}]
        )
        statuses = {row["_id"]: row["n"] for row in by_status}
        recent = await self._count(
            self.orders, {**PLACED, "createdAt": {"$gte": now - timedelta(days=RECENT_DAYS)}}
        )
        revenue = await self._aggregate(
            self.orders,
            [
                {"$match": PAID},
                {
                    "$group": {
                        "_id": None,
                        "total": {"$sum": "$totalPrice"},
                        "count": {"$sum": 1},
                        "month": {
                            "$sum": {
                                "$cond": [
                                    {"$gte": ["$paidAt", month_start(now)]},
                                    "$totalPrice",
                                    0,
                                ]
                            }
                        },
                    }
                },
            ],
        )
        money = revenue[0] if revenue else {"total": 0, "count": 0, "month": 0}
        return {
            "orders": {
                "total": sum(statuses.values()),
                "recent": recent,
                "pending": statuses.get(REQUESTED, 0),
                "processing": statuses.get("Processing", 0),
                "delivered": statuses.get("Delivered", 0),
            },
            "products": {
                "total": await self._count(self.products, {}),
                "outOfStock": await self._count(
                    self.products,
                    {"$or": [{"quantity": {"$lte": 0}}, {"status": "Out of Stock"}]},
                ),
                "featured": await self._count(self.products, {"isFeatured": True}),
            },
            "users": {"total": await self._count(self.users, {})},
            "revenue": {
                "total": _money(money["total"]),
                "thisMonth": _money(money["month"]),
                "average": _money(money["total"] / money["count"]) if money["count"] else 0.0,
            },
        }

    async def sales(self, since: datetime) -> builtins.list[dict[str, Any]]:
        rows = await self._aggregate(
            self.orders,
            [
                {"$match": {**PAID, "paidAt": {"$gte": since}}},
                {
                    "$group": {
                        "_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$paidAt"}},
                        "revenue": {"$sum": "$totalPrice"},
                    }
                },
                {"$sort": {"_id": 1}},
            ],
        )
        return [{"date": row["_id"], "revenue": _money(row["revenue"])} for row in rows]

    async def top_products(self, limit: int) -> builtins.list[dict[str, Any]]:
        rows = await self._aggregate(
            self.orders,
            [
                {"$match": SOLD},
                {"$unwind": "$orderItems"},
                {
                    "$group": {
                        "_id": "$orderItems.product",
                        "name": {"$first": "$orderItems.name"},
                        "sold": {"$sum": "$orderItems.qty"},
                        "revenue": {
                            "$sum": {"$multiply": ["$orderItems.qty", "$orderItems.price"]}
                        },
                    }
                },
                {"$sort": {"sold": -1, "_id": 1}},
                {"$limit": limit},
            ],
        )
        return [
            {
                "product": row["_id"],
                "name": row["name"],
                "sold": row["sold"],
                "revenue": _money(row["revenue"]),
            }
            for row in rows
        ]


@implementer(IDashboard)
class MemoryDashboard:
    """The same figures by brute force over the in-memory collections."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def _orders(self, paid: bool = False, sold: bool = False) -> builtins.list[Document]:
        out = []
        for order in self.store.orders.docs.values():
            status = order.get("orderStatus")
            if status in HIDDEN:
                continue
            if (paid or sold) and status == CANCELLED:
                continue
            if paid and order.get("isPaid") is not True:
                continue
            out.append(order)
        return out

    async def stats(self, now: datetime) -> dict[str, Any]:
        placed = self._orders()
        paid = self._orders(paid=True)
        total = sum(float(o.get("totalPrice") or 0) for o in paid)
        products = list(self.store.products.docs.values())
        return {
            "orders": {
                "total": len(placed),
                "recent": sum(
                    1 for o in placed if o["createdAt"] >= now - timedelta(days=RECENT_DAYS)
                ),
                "pending": sum(1 for o in placed if o["orderStatus"] == REQUESTED),
                "processing": sum(1 for o in placed if o["orderStatus"] == "Processing"),
                "delivered": sum(1 for o in placed if o["orderStatus"] == "Delivered"),
            },
            "products": {
                "total": len(products),
                "outOfStock": sum(
                    1
                    for p in products
                    if (p.get("quantity") or 0) <= 0 or p.get("status") == "Out of Stock"
                ),
                "featured": sum(1 for p in products if p.get("isFeatured") is True),
            },
            "users": {"total": len(self.store.users.docs)},
            "revenue": {
                "total": _money(total),
                "thisMonth": _money(
                    sum(
                        float(o.get("totalPrice") or 0)
                        for o in paid
                        if o.get("paidAt") and o["paidAt"] >= month_start(now)
                    )
                ),
                "average": _money(total / len(paid)) if paid else 0.0,
            },
        }

    async def sales(self, since: datetime) -> builtins.list[dict[str, Any]]:
        days: dict[str, float] = {}
        for order in self._orders(paid=True):
            paid_at = order.get("paidAt")
            if paid_at is not None and paid_at >= since:
                day = paid_at.strftime("%Y-%m-%d")
                days[day] = days.get(day, 0.0) + float(order.get("totalPrice") or 0)
        return [{"date": d, "revenue": _money(days[d])} for d in sorted(days)]

    async def top_products(self, limit: int) -> builtins.list[dict[str, Any]]:
        totals: dict[Any, dict[str, Any]] = {}
        for order in self._orders(sold=True):
            for item in order.get("orderItems") or []:
                row = totals.setdefault(
                    item["product"],
                    {
                        "product": item["product"],
                        "name": item.get("name"),
                        "sold": 0,
                        "revenue": 0.0,
                    },
                )
                row["sold"] += item["qty"]
                row["revenue"] += item["qty"] * float(item["price"])
        rows = sorted(totals.values(), key=lambda r: (-r["sold"], r["product"]))[:limit]
        return [{**r, "revenue": _money(r["revenue"])} for r in rows]
