"""Service routes: liveness, readiness, the welcome and the API document."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime

from crackershop import __version__
from crackershop.app.routing import Call, Reply, Route
from crackershop.errors import ServiceUnavailable, ShopError
from crackershop.store.interfaces import IStore


def _now(clock: IReactorTime) -> datetime:
    return datetime.fromtimestamp(clock.seconds(), tz=timezone.utc)


class ServiceHandlers:
    def __init__(
        self,
        store: IStore,
        clock: IReactorTime,
        environment: str,
        document: Callable[[], dict[str, Any]],
        readiness: Sequence[Callable[[], Any]] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.environment = environment
        self.document = document
        self.readiness = list(readiness)

    def routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                "/health",
                self.health,
                "Liveness; touches no dependency",
                tag="service",
                rate="exempt",
            ),
            Route(
                "GET",
                "/ready",
                self.ready,
                "Readiness of the database",
                tag="service",
                rate="exempt",
            ),
            Route("GET", "/api", self.welcome, "Welcome and version", tag="service"),
            Route(
                "GET", "/openapi.json", self.openapi, "This API's OpenAPI document", tag="service"
            ),
            Route(
                "GET",
                "/metrics",
                self.metrics,
                "Prometheus metrics of the whole server",
                tag="service",
                produces=("text/plain",),
                rate="exempt",
            ),
        ]

    async def health(self, call: Call) -> Reply:
        return Reply(
            {
                "success": True,
                "message": "Server is running",
                "timestamp": _now(self.clock),
                "environment": self.environment,
            }
        )

    async def ready(self, call: Call) -> Reply:
        checks: dict[str, str] = {}
        try:
            await self.store.ping()
            checks["mongodb"] = "ok"
        except ShopError:
            checks["mongodb"] = "unavailable"
        for check in self.readiness:
            name, state = await check()
            checks[name] = state
        failed = sorted(k for k, v in checks.items() if v == "unavailable")
        if failed:
            raise ServiceUnavailable(
                "Not ready: " + ", ".join(failed) + " unavailable", details=checks
            )
        return Reply({"success": True, "status": "ready", "checks": checks})

    async def welcome(self, call: Call) -> Reply:
        return Reply(
            {
                "success": True,
                "message": "Welcome to CrackerShop API",
                "version": __version__,
                "timestamp": _now(self.clock),
            }
        )

    async def metrics(self, call: Call) -> Reply:
        from crackershop.metrics import CONTENT_TYPE, render

        return Reply(render(), content_type=CONTENT_TYPE)

    async def openapi(self, call: Call) -> Reply:
        return Reply(self.document())
