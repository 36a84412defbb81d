"""The HTTP site of one serving process: the Klein app with its
dependencies, behind the request class that enforces the body limit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any, Callable, Optional

from twisted.internet.threads import deferToThreadPool
from twisted.web.server import Site

from crackershop.app import Dependencies, build_app
from crackershop.app.cors import Cors, CorsResource
from crackershop.app.google import GoogleKeys, treq_fetch
from crackershop.app.http import ShopRequest
from crackershop.app.mail import make_mailer
from crackershop.app.routing import resource
from crackershop.app.security import Passwords, Tokens
from crackershop.config import Config
from crackershop.orders import idempotency
from crackershop.ratelimit import Limiting, guard, make_limiting
from crackershop.server import requestlog
from crackershop.server.channel import channel_factory
from crackershop.server.connection import ConnectionLimits
from crackershop.server.requestlog import RequestLog
from crackershop.store.catalogue import CachedCatalogue
from crackershop.store.interfaces import IStore


class LoggedRequest(ShopRequest):
    """A request whose end is logged even when its client goes away first."""

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        requests = getattr(getattr(self, "site", None), "requests", None)
        if requests is not None:
            requests.end(self)


class ShopSite(Site):
    requestFactory = LoggedRequest
    # Request logging goes through twisted.logger, not the access log file.
    noisy = False

    def __init__(
        self,
        resource: Any,
        max_body_size: int,
        timeout: float,
        max_upload_size: int = 5 * 1024 * 1024,
        max_upload_files: int = 5,
        cors: Any = None,
        reactor: Any = None,
        limits: Optional[ConnectionLimits] = None,
        hsts_max_age: int = 0,
    ) -> None:
        super().__init__(resource, timeout=timeout, reactor=reactor)
        # Every connection obeys these (a request must arrive whole within
        # their arrival timeout); an idle connection is closed after ``timeout``.
        self.limits = limits if limits is not None else ConnectionLimits()
        self.hsts_max_age = hsts_max_age
        self.protocol = channel_factory(self.limits)  # type: ignore[method-assign]
        self.max_body_size = max_body_size
        self.max_upload_size = max_upload_size
        self.max_upload_files = max_upload_files
        # A multipart form carries its images beside ordinary fields.
        self.max_form_size = max_upload_size * max_upload_files + max_body_size
        self.cors = cors

    # Request ids and the per-request log event (crackershop.server.requestlog).
    requests: Any = None
    # What it was made from (see make_site).
    config: Any = None
    limiting: Any = None
    close_limiter: Any = None

    def getResourceFor(self, request: Any) -> Any:
        if self.requests is not None:
            self.requests.begin(request)
        return super().getResourceFor(request)

    def log(self, request: Any) -> None:
        if self.requests is not None:
            self.requests.end(request)

    def close(self) -> Any:
        """Release what the site holds, when its process stops serving."""
        if self.requests is not None:
            self.requests.stop()
        return self.close_limiter() if self.close_limiter is not None else None


# The features whose headers a browser sends or reads: each declares them as
# REQUEST_HEADERS and/or RESPONSE_HEADERS, and CORS allows and exposes them.
HEADER_FEATURES: Sequence[ModuleType] = (idempotency, requestlog, guard)


def make_cors(origins: Iterable[str], features: Sequence[ModuleType] = HEADER_FEATURES) -> Cors:
    """CORS for ``origins``, with the headers the features declare."""
    return Cors(
        origins,
        request_headers=[h for f in features for h in getattr(f, "REQUEST_HEADERS", ())],
        response_headers=[h for f in features for h in getattr(f, "RESPONSE_HEADERS", ())],
    )


# Settings that make the rate limiter: a site made again on a restart in
# place keeps its predecessor's limiter (and every client's bucket) unless
# one of these changed.
LIMITER_SETTINGS = (
    "rate_limit_enabled",
    "rate_limit_window_ms",
    "rate_limit_max_requests",
    "rate_limit_write_max",
    "rate_limit_auth_max",
    "redis_url",
    "redis_host",
    "redis_port",
    "redis_timeout",
    "trusted_proxies",
    "workers",
)


def make_site(
    reactor: Any,
    config: Config,
    store: IStore,
    limiting: Optional[Limiting] = None,
    previous: Optional[ShopSite] = None,
) -> ShopSite:
    """The site of one serving process, limited by ``limiting`` (made from
    ``config`` when not given); ``previous`` is the site it replaces (a
    single process restarting in place), whose limiter it keeps when the
    rate-limit settings are the same."""
    pool = reactor.getThreadPool()

    def in_thread(f: Any, *args: Any) -> Any:
        return deferToThreadPool(reactor, pool, f, *args)

    same = previous is not None and all(
        getattr(previous.config, name) == getattr(config, name) for name in LIMITER_SETTINGS
    )
    if previous is not None and same:
        limiting, close_limiter = previous.limiting, previous.close_limiter
    else:
        if limiting is None:
            limiting = make_limiting(reactor, config)
        close_limiter = _once(limiting.limiter.close if limiting.limiter is not None else None)
        if previous is not None:
            # connections still open on the old site may use it a while longer
            reactor.callLater(max(config.request_timeout, 60) * 2, previous.close_limiter)
    deps = Dependencies(
        store=store,
        tokens=Tokens(config.jwt_secret, config.jwt_expire, reactor, config.jwt_leeway),
        passwords=Passwords(config.bcrypt_rounds, in_thread),
        mailer=make_mailer(reactor, config),
        clock=reactor,
        environment=config.environment,
        public_url=config.public_url,
        guards=limiting.guards,
        readiness=limiting.readiness,
        google_client_id=config.google_client_id,
        google_keys=GoogleKeys(config.google_certs_url, treq_fetch(reactor), reactor)
        if config.google_client_id
        else None,
        order_max_lines=config.order_max_lines,
        order_repair_after=config.order_repair_after,
        catalogue=CachedCatalogue(store, reactor, config.catalogue_cache_ttl),
        request_timeout=config.request_timeout,
        auth_cache_ttl=config.auth_cache_ttl,
        run_in_thread=in_thread,
    )
    app = build_app(deps)
    cors = make_cors(config.allowed_origins)
    site = ShopSite(
        CorsResource(resource(app), cors),
        config.max_request_size,
        timeout=max(config.request_timeout, 60),
        max_upload_size=config.max_upload_size,
        max_upload_files=config.max_upload_files,
        cors=cors,
        reactor=reactor,
        limits=ConnectionLimits.from_config(config),
        hsts_max_age=config.hsts_max_age,
    )
    site.config = config
    site.limiting = limiting
    site.close_limiter = close_limiter
    site.requests = RequestLog(reactor, config.trusted_proxies)
    site.requests.start()
    if previous is not None and previous.requests is not None:
        previous.requests.stop()
    return site


def _once(close: Optional[Callable[[], Any]]) -> Callable[[], Any]:
    """``close``, run at most once (at shutdown, or when a restart in place
    replaced it, whichever comes first)."""
    done: list[bool] = []

    def run() -> Any:
        if close is None or done:
            return None
        done.append(True)
        return close()

    return run
