"""The HTTP site of one serving process: the Klein app with its
dependencies, behind the request class that enforces the body limit."""

from __future__ import annotations

from typing import Any

from twisted.internet.threads import deferToThreadPool
from twisted.web.server import Site

from crackershop.app import Dependencies, build_app
from crackershop.app.http import ShopRequest
from crackershop.app.security import Passwords, Tokens
from crackershop.config import Config
from crackershop.mail import OutboxMailer
from crackershop.store.interfaces import IStore


class ShopSite(Site):
    requestFactory = ShopRequest
    # Request logging goes through twisted.logger, not the access log file.
    noisy = False

    def __init__(self, resource: Any, max_body_size: int, timeout: float) -> None:
        super().__init__(resource, timeout=timeout)
        self.max_body_size = max_body_size

    def log(self, request: Any) -> None:
        return None


def make_site(reactor: Any, config: Config, store: IStore) -> ShopSite:
    pool = reactor.getThreadPool()

    def in_thread(f: Any, *args: Any) -> Any:
        return deferToThreadPool(reactor, pool, f, *args)

    deps = Dependencies(
        store=store,
        tokens=Tokens(config.jwt_secret, config.jwt_expire, reactor),
        passwords=Passwords(config.bcrypt_rounds, in_thread),
        mailer=OutboxMailer(config.mail_outbox or None),
        clock=reactor,
        environment=config.environment,
        public_url=config.public_url or f"http://localhost:{config.port}",
        order_max_lines=config.order_max_lines,
        order_repair_after=config.order_repair_after,
    )
    app = build_app(deps)
    return ShopSite(
        app.resource(), config.max_request_size, timeout=max(config.request_timeout, 60)
    )
