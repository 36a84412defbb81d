"""The Klein application: every route, wired to its dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional, Protocol

import attr
from klein import Klein
from twisted.internet.interfaces import IReactorTime

from crackershop.app.auth import Authenticator, AuthHandlers
from crackershop.app.categories import CategoryHandlers
from crackershop.app.chit import ChitHandlers
from crackershop.app.content import BannerHandlers, NotificationHandlers
from crackershop.app.dashboard import DashboardHandlers
from crackershop.app.google import GoogleKeys, GoogleSignIn
from crackershop.app.mail import IMailer
from crackershop.app.notify import Notifier
from crackershop.app.openapi import document
from crackershop.app.orders import OrderHandlers
from crackershop.app.pricelist import PriceListHandlers, Runner
from crackershop.app.products import ProductHandlers
from crackershop.app.routing import Guard, Route, Router
from crackershop.app.security import Passwords, Tokens
from crackershop.app.service import ServiceHandlers
from crackershop.app.settings import SettingsHandlers
from crackershop.app.uploads import Uploads
from crackershop.app.usercache import UserCache
from crackershop.app.users import UserHandlers
from crackershop.store.catalogue import CachedCatalogue, ICatalogue
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
    google_client_id: str = ""
    google_keys: Optional[GoogleKeys] = None
    order_max_lines: int = 50
    order_repair_after: float = 60.0
    # customers' catalogue reads; None reads the store every time
    catalogue: Optional[ICatalogue] = None
    # handling deadline per request (503 after); None: no deadline
    request_timeout: Optional[float] = None
    # how long a worker reuses a token's user record; 0: read it every time
    auth_cache_ttl: float = 0.0
    # runs blocking work (rendering price lists) off the reactor thread; None: in place
    run_in_thread: Optional[Runner] = None


class HasRoutes(Protocol):
    def routes(self) -> list[Route]: ...


def build_app(deps: Dependencies) -> Klein:
    app = Klein()
    users = UserCache(deps.store.users, deps.clock, deps.auth_cache_ttl)
    deps = attr.evolve(deps, store=users.store_view(deps.store))
    router = Router(
        app,
        Authenticator(deps.store, deps.tokens, users),
        deps.guards,
        clock=deps.clock,
        timeout=deps.request_timeout,
    )
    spec: dict[str, Any] = {}

    def api_document() -> dict[str, Any]:
        # built on first request, not at start: a tenth of a second or more
        # of CPU that would hold up every worker's first requests
        if not spec:
            spec.update(document(router.routes))
        return spec

    notifier = Notifier(deps.store)
    uploads = Uploads(deps.store.uploads, deps.public_url)
    catalogue = deps.catalogue or CachedCatalogue(deps.store, deps.clock, 0)
    auth = AuthHandlers(
        deps.store,
        deps.tokens,
        deps.passwords,
        deps.mailer,
        deps.clock,
        deps.public_url,
        uploads,
    )
    handlers: list[HasRoutes] = [
        ServiceHandlers(deps.store, deps.clock, deps.environment, api_document, deps.readiness),
        auth,
        GoogleSignIn(deps.store, deps.google_keys, deps.google_client_id, deps.clock, auth.session),
        PriceListHandlers(deps.store, catalogue, deps.clock, deps.run_in_thread),
        ProductHandlers(deps.store, notifier, uploads, catalogue),
        CategoryHandlers(deps.store, uploads, catalogue),
        UserHandlers(deps.store, uploads),
        BannerHandlers(deps.store, uploads),
        uploads,
        NotificationHandlers(deps.store),
        ChitHandlers(deps.store, notifier, deps.clock),
        SettingsHandlers(deps.store, uploads),
        DashboardHandlers(deps.store.dashboard, deps.clock),
        OrderHandlers(
            deps.store, deps.clock, notifier, deps.order_max_lines, deps.order_repair_after
        ),
    ]
    for handler in handlers:
        for route in handler.routes():
            router.add(route)
    app.router = router  # type: ignore[attr-defined]
    app.notifier = notifier  # type: ignore[attr-defined]
    return app
