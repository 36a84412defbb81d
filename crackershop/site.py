"""The HTTP site of one serving process: the Klein app with its
dependencies, behind the request class that enforces the body limit."""

from __future__ import annotations

from typing import Any

from twisted.internet.threads import deferToThreadPool
from twisted.web.server import Site

from crackershop.app import Dependencies, build_app
from crackershop.app.cors import Cors, CorsResource
from crackershop.app.http import ShopRequest
from crackershop.app.security import Passwords, Tokens
from crackershop.config import Config
from crackershop.mail import OutboxMailer
from crackershop.ratelimit import make_limiting
from crackershop.store.interfaces import IStore


class ShopSite(Site):
    requestFactory = ShopRequest
    # Request logging goes through twisted.logger, not the access log file.
    noisy = False

    def __init__(self, resource: Any, max_body_size: int, timeout: float, cors: Any = None) -> None:
        super().__init__(resource, timeout=timeout)
        self.max_body_size = max_body_size
        self.cors = cors

    def log(self, request: Any) -> None:
        return None


def make_site(reactor: Any, config: Config, store: IStore) -> ShopSite:
    pool = reactor.getThreadPool()

    def in_thread(f: Any, *args: Any) -> Any:
        return deferToThreadPool(reactor, pool, f, *args)

    limiting = make_limiting(reactor, config)
    if limiting.limiter is not None:
        reactor.addSystemEventTrigger("before", "shutdown", limiting.limiter.close)
    deps = Dependencies(
        store=store,
        tokens=Tokens(config.jwt_secret, config.jwt_expire, reactor),
        passwords=Passwords(config.bcrypt_rounds, in_thread),
        mailer=OutboxMailer(config.mail_outbox or None),
        clock=reactor,
        environment=config.environment,
        public_url=config.public_url or f"http://localhost:{config.port}",
        guards=limiting.guards,
        readiness=limiting.readiness,
    )
    app = build_app(deps)
    cors = Cors(config.allowed_origins)
    return ShopSite(
        CorsResource(app.resource(), cors),
        config.max_request_size,
        timeout=max(config.request_timeout, 60),
        cors=cors,
    )
