"""The listening service of a serving process: a
:class:`~twisted.application.internet.StreamServerEndpointService` on the
configured TCP port (single process) or on the socket a worker inherits
from its master, that binds only once the site is ready, so no connection
is accepted before the database is.

The port's factory is a :class:`Switch`: the site (behind TLS when a
certificate is configured) can be replaced while the port stays open, which
is how a single process restarts in place.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

log = Logger()

TLS = Optional[tuple[str, str]]  # certificate and key files


class Switch(Factory):
    """Each new connection gets the protocol of the current site (or of TLS
    in front of it), which :meth:`swap` replaces while the port stays open."""

    noisy = False

    def __init__(self) -> None:
        self.current: Optional[Factory] = None

    def buildProtocol(self, addr: Any) -> Any:
        assert self.current is not None
        return self.current.buildProtocol(addr)

    def startFactory(self) -> None:
        if self.current is not None:
            self.current.doStart()

    def stopFactory(self) -> None:
        if self.current is not None:
            self.current.doStop()

    def swap(self, factory: Factory) -> None:
        old, self.current = self.current, factory
        if self.numPorts:
            factory.doStart()
            if old is not None:
                old.doStop()


def tls_options(tls: TLS) -> Any:
    """TLS read from the files now, or None for plain HTTP; a bad pair raises
    :class:`~crackershop.server.tls.TLSSetupError`."""
    if tls is None:
        return None
    from crackershop.server.tls import server_options

    return server_options(*tls)


def tcp_endpoint(reactor: Any, host: str, port: int) -> IStreamServerEndpoint:
    if ":" in host:
        return TCP6ServerEndpoint(reactor, port, interface=host)
    return TCP4ServerEndpoint(reactor, port, interface=host)


class ListeningService(StreamServerEndpointService):
    """Serves ``site()``'s site on ``endpoint`` once it fires; ``failed`` is
    told why when it cannot (the site cannot be made, the port not bound),
    ``listening`` when it listens. ``tls`` is read when the service is made."""

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        site: Callable[[], Deferred[Site]],
        failed: Callable[[Failure], None],
        tls: TLS = None,
        listening: Callable[[IListeningPort], None] = lambda port: None,
    ) -> None:
        super().__init__(endpoint, Switch())
        self.switch: Switch = self.factory
        self.make_site = site
        self.failed = failed
        self.on_listening = listening
        self.tls = tls
        self._options = tls_options(tls)
        self.site: Optional[Site] = None
        self.port: Optional[IListeningPort] = None
        self._listening: list[Deferred[IListeningPort]] = []

    def privilegedStartService(self) -> None:
        # binding waits for the site (startService), which needs the database
        Service.privilegedStartService(self)

    def startService(self) -> None:
        Service.startService(self)
        self._waitingForPort = self.make_site().addCallback(self._listen)
        self._waitingForPort.addErrback(self._not_listening)

    def _listen(self, site: Site) -> Deferred[Any]:
        self.serve(site, self.tls, self._options)
        return self.endpoint.listen(self.factory).addCallback(self._listened)

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        self.on_listening(port)
        waiting, self._listening = self._listening, []
        for d in waiting:
            d.callback(port)
        return port

    def whenListening(self) -> Deferred[IListeningPort]:
        """Fires with the port once the service listens."""
        if self.port is not None:
            return succeed(self.port)
        d: Deferred[IListeningPort] = Deferred(lambda d: self._listening.remove(d))
        self._listening.append(d)
        return d

    def _not_listening(self, failure: Failure) -> None:
        if failure.check(CancelledError) or not self.running:
            return
        self.failed(failure)
        return

    def serve(self, site: Site, tls: TLS, options: Any) -> None:
        """From now on, new connections get ``site`` (behind TLS ``options``
        made by :func:`tls_options` from ``tls``). Connections already open
        finish on the site they began with; the port stays open throughout,
        so none is refused."""
        self.tls, self._options = tls, options
        factory: Any = site
        if tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(options, False, site)
        self.switch.swap(factory)
        self.site = site

    def stop_accepting(self) -> Deferred[None]:
        """Close the port (the site goes on answering the connections it has)."""
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        stopped: Deferred[None] = maybeDeferred(port.stopListening)  # type: ignore[call-overload]
        return stopped

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        limits = getattr(self.site, "limits", None)
        if limits is not None:
            # what is answered from now on ends its connection
            limits.draining = True
        if self._waitingForPort is not None and not self._waitingForPort.called:
            self._waitingForPort.cancel()
        d = self.stop_accepting()
        close = getattr(self.site, "close", None)
        if close is not None:
            # what the site holds (its rate limiter's connection)
            d.addCallback(lambda _: close())
        return d


def redirect_service(
    reactor: Any,
    host: str,
    port: int,
    https: Callable[[], Deferred[int]],
    public_url: str,
    failed: Callable[[Failure], None],
) -> ListeningService:
    """The plain-HTTP port (HTTP_REDIRECT_PORT) that answers every request
    with a redirect to HTTPS, on the port ``https()`` fires with."""
    from crackershop.server.tls import RedirectSite

    def site() -> Deferred[Site]:
        return https().addCallback(lambda https_port: RedirectSite(https_port, public_url, reactor))

    def listening(listened: IListeningPort) -> None:
        log.info("redirecting HTTP on {host}:{port} to HTTPS", host=host, port=port)

    return ListeningService(tcp_endpoint(reactor, host, port), site, failed, None, listening)


def reason(failure: Failure) -> str:
    """One line for why a serving process cannot serve."""
    from twisted.internet.error import CannotListenError

    if failure.check(CannotListenError):
        err: Any = failure.value
        where = err.interface or "0.0.0.0"  # noqa: S104 (naming the wildcard, not binding it)
        return f"cannot listen on {where}:{err.port}: {err.socketError}"
    return str(failure.value) or repr(failure.value)
