"""The Klein application: every route, wired to its dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Protocol

import attr
from klein import Klein
from twisted.internet.interfaces import IReactorTime

from crackershop.app.auth import Authenticator, AuthHandlers
from crackershop.app.catalogue import CatalogueHandlers
from crackershop.app.openapi import document
from crackershop.app.orders import OrderHandlers
from crackershop.app.routing import Guard, Route, Router
from crackershop.app.security import Passwords, Tokens
from crackershop.app.service import ServiceHandlers
from crackershop.app.settings import SettingsHandlers
from crackershop.app.users import UserHandlers
from crackershop.mail import IMailer
from crackershop.store.interfaces import IStore


@attr.s(auto_attribs=True, frozen=True)
class Dependencies:
    store: IStore
    tokens: Tokens
    passwords: Passwords
    mailer: IMailer
    clock: IReactorTime
    environment: str = "development"
    public_url: str = ""
    guards: Sequence[Guard] = ()
    readiness: Sequence[Callable[[], Any]] = ()
    order_max_lines: int = 50
    order_repair_after: float = 60.0


class HasRoutes(Protocol):
    def routes(self) -> list[Route]: ...


def build_app(deps: Dependencies) -> Klein:
    app = Klein()
    router = Router(app, Authenticator(deps.store, deps.tokens), deps.guards)
    spec: dict[str, Any] = {}
    handlers: list[HasRoutes] = [
        ServiceHandlers(deps.store, deps.clock, deps.environment, lambda: spec, deps.readiness),
        AuthHandlers(
            deps.store, deps.tokens, deps.passwords, deps.mailer, deps.clock, deps.public_url
        ),
        CatalogueHandlers(deps.store),
        UserHandlers(deps.store),
        SettingsHandlers(deps.store),
        OrderHandlers(deps.store, deps.clock, deps.order_max_lines, deps.order_repair_after),
    ]
    for handler in handlers:
        for route in handler.routes():
            router.add(route)
    spec.update(document(router.routes))
    app.router = router  # type: ignore[attr-defined]
    return app
