"""Service routes: liveness, readiness, the welcome and the API document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from crackershop import __version__
from crackershop.app.responses import ApiDocument, Health, Ready, Welcome
from crackershop.app.routing import Call, Reply, Route
from crackershop.clock import iso_now
from crackershop.errors import ServiceUnavailable, ShopError
from crackershop.store.interfaces import IStore

# How long /ready waits for a dependency: under the 1-5 s after which
# load balancers and Kubernetes count a probe as failed, not answered.
READY_DEADLINE = 1.5


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
                operation="health",
                response=Health,
                tag="service",
                rate="exempt",
            ),
            Route(
                "GET",
                "/ready",
                self.ready,
                "Readiness of the database",
                operation="ready",
                response=Ready,
                tag="service",
                rate="exempt",
            ),
            Route(
                "GET",
                "/api",
                self.welcome,
                "Welcome and version",
                operation="welcome",
                response=Welcome,
                tag="service",
            ),
            Route(
                "GET",
                "/openapi.json",
                self.openapi,
                "This API's OpenAPI document",
                operation="getOpenApiDocument",
                response=ApiDocument,
                tag="service",
            ),
            Route(
                "GET",
                "/metrics",
                self.metrics,
                "Prometheus metrics of the whole server",
                operation="metrics",
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
                "timestamp": iso_now(self.clock),
                "environment": self.environment,
            }
        )

    async def ready(self, call: Call) -> Reply:
        """Every check runs at once, each within READY_DEADLINE, so a probe
        gets its answer in time whatever is down."""

        async def mongodb() -> tuple[str, str]:
            await self.store.ping()
            return "mongodb", "ok"

        names = ["mongodb"] + [f"check {i}" for i in range(len(self.readiness))]
        results = await gatherResults(
            [
                self._within(Deferred.fromCoroutine(check()), name)
                for name, check in zip(names, [mongodb, *self.readiness])
            ]
        )
        checks = {name: state for name, state, _ in results}
        reasons = [f"{name} {why}" for name, state, why in results if state == "unavailable"]
        if reasons:
            raise ServiceUnavailable("Not ready: " + "; ".join(sorted(reasons)), details=checks)
        return Reply({"success": True, "status": "ready", "checks": checks})

    def _within(self, d: Deferred[Any], name: str) -> Deferred[tuple[str, str, str]]:
        """(name, state, reason): "unavailable" when the check fails or has
        not answered by the deadline (and is then cancelled)."""
        began = self.clock.seconds()
        d.addTimeout(READY_DEADLINE, self.clock)

        def answered(result: tuple[str, str]) -> tuple[str, str, str]:
            return result[0], result[1], ""

        def failed(failure: Failure) -> tuple[str, str, str]:
            late = self.clock.seconds() - began >= READY_DEADLINE
            if late:
                why = f"did not answer within {READY_DEADLINE:g}s"
            elif failure.check(ShopError):
                why = "unavailable"
            else:
                why = f"failed: {type(failure.value).__name__}"
            return name, "unavailable", why

        return d.addCallbacks(answered, failed)

    async def welcome(self, call: Call) -> Reply:
        return Reply(
            {
                "success": True,
                "message": "Welcome to CrackerShop API",
                "version": __version__,
                "timestamp": iso_now(self.clock),
            }
        )

    async def metrics(self, call: Call) -> Reply:
        from crackershop.metrics import CONTENT_TYPE, render

        return Reply(render(), content_type=CONTENT_TYPE)

    async def openapi(self, call: Call) -> Reply:
        return Reply(self.document())
