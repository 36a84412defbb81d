"""The service tree of a serving process, built in one place.

:func:`serving` adds what every serving process runs, in the order it
starts (and stops in reverse): the embedded database when there is no
MONGO_URI, the database pool, the order-repair sweep, and the listening
port, which binds once the site is ready. A single process
(:func:`single_process`) and a cluster's worker
(:mod:`crackershop.cluster.worker`) both build it::

    single process (--workers=0)          worker (spawned by the master)
    Root                                  InOrder
      SingleProcess (control, restart)      Agent (link to the master)
      [EmbeddedMongo]                       DatabaseService
      DatabaseService                       RepairService
      RepairService                         ListeningService (adopted socket)
      ListeningService (TCP, TLS)
      ControlService (control socket)
      [redirect listener]                   (once the HTTPS port listens)
      SignalService
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Optional, Union

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from crackershop.config import Config
from crackershop.orders.repair import RepairService
from crackershop.server.listening import (
    ListeningService,
    reason,
    redirect_service,
    tcp_endpoint,
    tls_options,
)
from crackershop.server.pool import DatabaseService, database_uri
from crackershop.server.root import Refused, Root
from crackershop.server.signals import SignalService
from crackershop.server.tls import TLSSetupError
from crackershop.store.interfaces import IStore

log = Logger()

MakeSite = Callable[[IStore], Union[Site, Deferred[Site]]]


class Serving(NamedTuple):
    embedded: Any  # the embedded database, or None with MONGO_URI
    database: DatabaseService
    repair: RepairService
    listener: ListeningService


def serving(
    reactor: Any,
    config: Config,
    parent: MultiService,
    endpoint: IStreamServerEndpoint,
    site: MakeSite,
    failed: Callable[[Failure], None],
    listening: Callable[[IListeningPort], None] = lambda port: None,
) -> Serving:
    """Add database -> repair -> listener to ``parent``. ``site(store)``
    makes the site once the database is connected; ``failed`` is told when
    the process cannot serve. Reads the TLS files now (a bad pair raises
    :class:`~crackershop.server.tls.TLSSetupError`)."""
    tls = (config.tls_cert, config.tls_key) if config.tls_cert else None
    uri, embedded = database_uri(reactor, config, parent)
    database = DatabaseService(reactor, config, uri)
    database.setServiceParent(parent)
    repair = RepairService(reactor, config.order_repair_after, database.whenConnected)
    repair.setServiceParent(parent)

    def ready() -> Deferred[Site]:
        return database.whenConnected().addCallback(site)

    listener = ListeningService(endpoint, ready, failed, tls, listening)
    listener.setServiceParent(parent)
    return Serving(embedded, database, repair, listener)


def single_process(reactor: Any, config: Config, given: Mapping[str, str]) -> Root:
    """The tree of ``twistd crackershop --workers=0``."""
    root = Root(reactor, config)
    process = SingleProcess(reactor, config, given)
    process.setServiceParent(root)
    try:
        process.serving = serving(
            reactor,
            config,
            root,
            tcp_endpoint(reactor, config.host, config.port),
            process.first_site,
            lambda failure: root.fail(reason(failure)),
            process.listening,
        )
    except TLSSetupError as e:  # the certificate and key, read now
        return Refused(reactor, config, str(e))
    from crackershop.ops.control import ControlService

    def no_control(why: str) -> None:
        log.error("{error}; `crackershop status` cannot reach this server", error=why)

    ControlService(reactor, config.run_dir, process, no_control).setServiceParent(root)
    if config.tls_cert and config.http_redirect_port:
        listener = process.serving.listener

        def https() -> Deferred[int]:
            return listener.whenListening().addCallback(port_number)

        redirect_service(
            reactor,
            config.host,
            config.http_redirect_port,
            https,
            config.public_url,
            lambda failure: root.fail(reason(failure)),
        ).setServiceParent(root)
    actions = {signal.SIGHUP: process.hup, signal.SIGUSR1: root.reopen_logs}
    SignalService(reactor, actions).setServiceParent(root)
    return root


class SingleProcess(Service):
    """A one-process server's own part: its sites (the first once the
    database is connected, a new one on each restart in place), the redirect
    port once it listens, and its answers on the control socket (it is its
    own only worker; ``restart`` restarts it in place, ``scale`` needs a
    cluster)."""

    def __init__(self, reactor: Any, config: Config, given: Mapping[str, str]) -> None:
        from crackershop.ops.control import ProcessFigures

        self.reactor = reactor
        self.config = config
        self.given = dict(given)
        self.serving: Optional[Serving] = None
        self.store: Optional[IStore] = None
        self.in_place: Any = None
        self.started = reactor.seconds()
        self.figures = ProcessFigures()

    # -- sites

    def first_site(self, store: IStore) -> Site:
        from crackershop.server.restart import InPlace
        from crackershop.server.site import make_site

        self.store = store
        site = make_site(self.reactor, self.config, store)
        self.in_place = InPlace(self.config, self.given, self._serve)
        return site

    def _serve(self, new: Config) -> None:
        """The certificate first: a bad pair changes nothing at all."""
        from crackershop.server.site import make_site

        assert self.serving is not None and self.store is not None
        listener = self.serving.listener
        tls = (new.tls_cert, new.tls_key) if new.tls_cert else None
        options = tls_options(tls)
        site = make_site(self.reactor, new, self.store, previous=listener.site)  # type: ignore[arg-type]
        listener.serve(site, tls, options)

    def listening(self, port: IListeningPort) -> None:
        address: Any = port.getHost()
        tls = bool(self.config.tls_cert)
        log.info(
            "serving {scheme} on {host}:{port}",
            scheme="HTTPS" if tls else "HTTP",
            host=address.host,
            port=address.port,
        )

    def hup(self) -> None:
        """SIGHUP (``systemctl reload``): restart in place; a refusal is
        logged, and the server goes on as it was."""
        from crackershop.server.restart import RestartRefused

        if self.in_place is None:
            log.info("not restarted: the server is still starting")
            return
        with contextlib.suppress(RestartRefused):
            self.in_place.restart()

    # -- the control socket's commands

    def status(self) -> dict[str, Any]:
        from crackershop.ops.control import server_summary
        from crackershop.server import requestlog

        host, port = self.config.host, self.config.port
        listener = self.serving.listener if self.serving is not None else None
        listening = listener.port if listener is not None else None
        if listening is not None:
            address: Any = listening.getHost()
            host, port = address.host, address.port
        summary = server_summary(self.config, "single process", host, port, self.config.redis_url)
        in_place = self.in_place
        restarts = in_place.restarts if in_place is not None else 0
        row: dict[str, Any] = {
            "id": 0,
            "slot": 0,
            "pid": os.getpid(),
            "state": "ready" if listening is not None else "starting",
            "uptime": self.reactor.seconds() - self.started,
            "restarts": restarts,
            "reason": "restart in place" if restarts else None,
            # restarts in place refused (settings or certificate), and why the last was
            "refused": in_place.refused if in_place is not None else 0,
            "refusal": in_place.refusal if in_place is not None else None,
            "served": requestlog.COUNTS.served,
            "connections": requestlog.COUNTS.in_flight,
        }
        row.update(self.figures(os.getpid()))
        summary["workers"] = [row]
        embedded = self.serving.embedded if self.serving is not None else None
        summary["children"] = [embedded.describe()] if embedded is not None else []
        if embedded is not None and not summary["database"] and embedded.address:
            summary["database"] = f"{embedded.address} (embedded)"
        return summary

    def stop(self) -> dict[str, Any]:
        log.info("stopping on request from the control socket")
        self.reactor.callLater(0, self.reactor.stop)
        return {"pid": os.getpid()}

    def restart(self, worker: Optional[int]) -> Any:
        from crackershop.ops.control import ControlError
        from crackershop.server.restart import RestartRefused

        if worker not in (None, 0):
            raise ControlError(f"there is no worker {worker} (a single process is worker 0)")
        if self.in_place is None:
            raise ControlError("the server is still starting; try again when it is ready")
        try:
            return self.in_place.restart()
        except RestartRefused as e:
            raise ControlError(f"restart refused, the server goes on as it was: {e}") from None

    def scale(self, count: int) -> Any:
        from crackershop.ops.control import ControlError

        raise ControlError("a single-process server cannot scale; start it with --workers=N")


def port_number(port: IListeningPort) -> int:
    address: Any = port.getHost()
    return int(address.port)
