"""/api/v1/dashboard: figures for the shop's admins."""

from __future__ import annotations

from datetime import timedelta

from twisted.internet.interfaces import IReactorTime

from crackershop.app.queries import int_arg
from crackershop.app.responses import DaySales, Stats, Success, TopProduct
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.clock import now_utc
from crackershop.store.dashboard import IDashboard


class DashboardHandlers:
    def __init__(self, dashboard: IDashboard, clock: IReactorTime) -> None:
        self.dashboard = dashboard
        self.clock = clock

    def routes(self) -> list[Route]:
        p = "/api/v1/dashboard"
        return [
            Route(
                "GET",
                f"{p}/stats",
                self.stats,
                "Order, product, user and revenue figures",
                operation="getDashboardStats",
                access="admin",
                response=Success[Stats],
                tag="dashboard",
            ),
            Route(
                "GET",
                f"{p}/sales-chart",
                self.sales_chart,
                "Paid revenue per day",
                operation="getSalesChart",
                access="admin",
                query=("days",),
                response=Success[list[DaySales]],
                tag="dashboard",
            ),
            Route(
                "GET",
                f"{p}/top-products",
                self.top_products,
                "Best sellers by units sold",
                operation="getTopProducts",
                access="admin",
                query=("limit",),
                response=Success[list[TopProduct]],
                tag="dashboard",
            ),
        ]

    async def stats(self, call: Call) -> Reply:
        return ok(await self.dashboard.stats(now_utc(self.clock)))

    async def sales_chart(self, call: Call) -> Reply:
        days = int_arg(call.args, "days", 30, 1, 366)
        today = now_utc(self.clock).replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - timedelta(days=days - 1)
        found = {row["date"]: row["revenue"] for row in await self.dashboard.sales(since)}
        series = []
        for offset in range(days):
            date = (since + timedelta(days=offset)).strftime("%Y-%m-%d")
            series.append({"date": date, "revenue": found.get(date, 0.0)})
        return ok(series)

    async def top_products(self, call: Call) -> Reply:
        limit = int_arg(call.args, "limit", 10, 1, 100)
        return ok(await self.dashboard.top_products(limit))
