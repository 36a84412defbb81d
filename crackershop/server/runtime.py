"""The services of one serving process: the database pool and the HTTP
listener. The process is ready once both are up."""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from crackershop.config import Config, mask_uri
from crackershop.errors import ShopError
from crackershop.store.database import MongoStore
from crackershop.store.mongo import database_name, open_pool

log = Logger()

INDEX_RETRY = 2.0


class DatabaseService(Service):
    """Opens the MongoDB pool once the URI is known, then makes sure the
    indexes exist, retrying in the background while the database is away."""

    def __init__(self, reactor: Any, config: Config, uri: Callable[[], Deferred[str]]) -> None:
        self.reactor = reactor
        self.config = config
        self._uri = uri
        self.pool: Any = None
        self.store: Optional[MongoStore] = None
        self.indexed = False
        self._retry: Any = None
        # the embedded database serving this pool, if this process runs it
        self.child: Any = None

    def connect(self) -> Deferred[MongoStore]:
        def opened(uri: str) -> MongoStore:
            self.pool = open_pool(uri, self.config.mongo_max_pool_size)
            name = database_name(uri, self.config.mongo_db)
            self.store = MongoStore(self.pool[name], self.reactor, self.config.request_timeout)
            log.info(
                "using MongoDB at {uri}, database {name}, {size} connections",
                uri=mask_uri(uri),
                name=name,
                size=self.config.mongo_max_pool_size,
            )
            self._ensure_indexes()
            return self.store

        return self._uri().addCallback(opened)

    def _ensure_indexes(self) -> None:
        assert self.store is not None
        store = self.store

        def failed(failure: Failure) -> None:
            if not self.running:
                return
            if not failure.check(ShopError):
                log.failure("creating indexes failed", failure)
            self._retry = self.reactor.callLater(INDEX_RETRY, self._ensure_indexes)

        def done(_: None) -> None:
            self.indexed = True

        ensureDeferred(store.ensure_indexes()).addCallbacks(done, failed)

    def stopService(self) -> Optional[Deferred[None]]:
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self.pool is not None:
            d: Deferred[None] = self.pool.disconnect()
            return d
        return None


def database_service(
    reactor: Any, config: Config, parent: Optional[MultiService] = None
) -> DatabaseService:
    """The database pool of a serving process (single-process server or
    cluster worker): on MONGO_URI, or on an embedded database started as a
    sibling service under ``parent``."""
    if config.mongo_uri:
        uri = config.mongo_uri

        def source() -> Deferred[str]:
            return succeed(uri)

    else:
        from crackershop.children.embedded import EmbeddedMongo

        assert parent is not None, "the embedded database needs a parent service"
        embedded = EmbeddedMongo(reactor, config.data_dir)
        embedded.setServiceParent(parent)
        source = embedded.whenReady
    database = DatabaseService(reactor, config, source)
    if not config.mongo_uri:
        database.child = embedded
    if parent is not None:
        database.setServiceParent(parent)
    return database


class Switch(Factory):
    """The listening port's factory: each new connection gets the protocol of
    the current site (or of TLS in front of it), which :meth:`swap` replaces
    while the port stays open."""

    noisy = False

    def __init__(self, current: Factory) -> None:
        self.current = current

    def buildProtocol(self, addr: Any) -> Any:
        return self.current.buildProtocol(addr)

    def startFactory(self) -> None:
        self.current.doStart()

    def stopFactory(self) -> None:
        self.current.doStop()

    def swap(self, factory: Factory) -> None:
        old, self.current = self.current, factory
        if self.numPorts:
            factory.doStart()
            old.doStop()


class HttpService(Service):
    """Listens on the configured interface and port with the shop's site:
    HTTPS when a certificate and key are configured (read when listening
    starts), plus the optional plain-HTTP port that redirects to it."""

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int,
        tls: Optional[tuple[str, str]] = None,
        redirect_port: int = 0,
        public_url: str = "",
    ) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.tls = tls
        self.redirect_port = redirect_port
        self.public_url = public_url
        self.listening: Optional[IListeningPort] = None
        self.redirecting: Optional[IListeningPort] = None
        self.switch: Any = None
        self._options: Any = None
        self.site: Optional[Site] = None

    def prepare(self) -> None:
        """Read the certificate and key now, so that a bad pair stops
        start-up before anything else is opened."""
        if self.tls is not None:
            from crackershop.server.tls import server_options

            self._options = server_options(*self.tls)

    def listen(self, site: Site) -> IListeningPort:
        self.site = site
        tls = self.tls is not None
        if tls and self._options is None:
            self.prepare()
        self.switch = Switch(self._factory(site))
        self.listening = self.reactor.listenTCP(self.port, self.switch, interface=self.host)
        address: Any = self.listening.getHost()
        log.info(
            "serving {scheme} on {host}:{port}",
            scheme="HTTPS" if tls else "HTTP",
            host=address.host,
            port=address.port,
        )
        if tls and self.redirect_port:
            from crackershop.server.tls import RedirectSite

            redirect = RedirectSite(address.port, self.public_url, self.reactor)
            self.redirecting = self.reactor.listenTCP(
                self.redirect_port, redirect, interface=self.host
            )
            log.info(
                "redirecting HTTP on {host}:{port} to HTTPS",
                host=address.host,
                port=self.redirect_port,
            )
        return self.listening

    def tls_options(self, tls: Optional[tuple[str, str]]) -> Any:
        """TLS read from ``tls``'s files, or None for plain HTTP; a bad pair raises."""
        if tls is None:
            return None
        from crackershop.server.tls import server_options

        return server_options(*tls)

    def serve(self, site: Site, tls: Optional[tuple[str, str]], options: Any) -> None:
        """From now on, new connections get ``site`` (behind TLS ``options``
        made by :meth:`tls_options` from ``tls``). Connections already open
        finish on the site they began with; the listening socket stays open
        throughout, so none is refused."""
        self.tls, self._options = tls, options
        self.switch.swap(self._factory(site))
        self.site = site

    def _factory(self, site: Site) -> Any:
        if self.tls is None:
            return site
        from twisted.protocols.tls import TLSMemoryBIOFactory

        options, self._options = self._options, None
        return TLSMemoryBIOFactory(options, False, site)

    def stopService(self) -> Optional[Deferred[None]]:
        super().stopService()
        limits = getattr(self.site, "limits", None)
        if limits is not None:
            # as a draining worker does: what is answered from now on ends its connection
            limits.draining = True
        if self.redirecting is not None:
            self.redirecting.stopListening()
            self.redirecting = None
        if self.listening is not None:
            d: Optional[Deferred[None]] = self.listening.stopListening()
            self.listening = None
            return d
        return None
