"""The master process: owns the listening socket, runs what its workers
share (the embedded database, the memory of the rate-limit buckets),
answers the control socket, writes the cluster's log file, and supervises
the worker processes. It never serves HTTP itself.

Its service tree (:func:`master_service`) starts in this order and stops in
the reverse one, so the workers drain first, while the database and the
socket are still there::

    Root (the log file, the exit status)
      Master (the shared socket, the rate-limit table, the control socket's answers)
      [EmbeddedMongo]           no MONGO_URI
      ControlService            RUN_DIR/crackershop.sock
      [redirect listener]       TLS with HTTP_REDIRECT_PORT
      SignalService             TERM/INT, HUP, TTIN, TTOU, USR1
      [Reloader]                --reload
      SupervisorService         the workers
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from dataclasses import replace
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from crackershop.cluster.board import AcceptBoard
from crackershop.cluster.link import (
    BOARD_FD,
    CONFIG_ENV,
    FAMILY_ENV,
    FROM_MASTER_FD,
    LISTEN_FD,
    MASTER_PID_ENV,
    RATE_TABLE_ENV,
    RATE_TABLE_FD,
    TO_MASTER_FD,
    WORKER_ID_ENV,
    config_to_env,
)
from crackershop.cluster.supervisor import Supervisor, Worker, WorkerPolicy
from crackershop.config import Config, mask_uri, worker_count
from crackershop.server.root import Refused, Root
from crackershop.server.signals import SignalService

log = Logger()

BACKLOG = 1024


def worker_command() -> tuple[str, list[str]]:
    """The worker's executable and argv: ``python -m crackershop.cluster.worker``,
    or, in a frozen (PyInstaller) build that has no ``-m``, the binary itself
    with its private ``_worker`` sub-command."""
    if getattr(sys, "frozen", False):
        return sys.executable, [sys.executable, "_worker"]
    return sys.executable, [sys.executable, "-m", "crackershop.cluster.worker"]


def bind(host: str, port: int) -> socket.socket:
    """The shared listening socket; every worker accepts from its queue."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def rss(pid: int) -> Optional[int]:
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


def master_service(
    reactor: Any, config: Config, listen: Callable[[str, int], socket.socket] = bind
) -> Root:
    """The tree of ``twistd crackershop --workers=N`` (N > 1, or --reload).
    The socket is bound (``listen``) and the certificate checked now, before
    anything starts: either failing, the process says why and exits 1."""
    try:
        sock = listen(config.host, config.port)
    except OSError as e:
        return Refused(reactor, config, f"cannot listen on {config.host}:{config.port}: {e}")
    if config.tls_cert:
        from crackershop.server.tls import server_options

        try:
            server_options(config.tls_cert, config.tls_key)  # each worker reads them again
        except Exception as e:
            sock.close()
            return Refused(reactor, config, str(e))
    root = Root(reactor, config, worker_count(config))
    master = Master(reactor, config, sock, root.fail)
    master.setServiceParent(root)
    if not config.mongo_uri:
        from crackershop.children.embedded import EmbeddedMongo

        master.embedded = EmbeddedMongo(reactor, config.data_dir)
        master.embedded.setServiceParent(root)
    from crackershop.ops.control import ControlService

    ControlService(reactor, config.run_dir, master, root.fail).setServiceParent(root)
    if config.tls_cert and config.http_redirect_port:
        from crackershop.server.listening import reason, redirect_service

        redirect_service(
            reactor,
            config.host,
            config.http_redirect_port,
            lambda: succeed(master.address[1]),
            config.public_url,
            lambda failure: root.fail(reason(failure)),
        ).setServiceParent(root)
    actions = {
        signal.SIGHUP: master.rolling_restart,
        signal.SIGTTIN: master.supervisor.add_worker,
        signal.SIGTTOU: master.supervisor.remove_worker,
        signal.SIGUSR1: root.reopen_logs,
    }
    SignalService(reactor, actions).setServiceParent(root)
    if config.reload:
        from crackershop.cluster.reload import Reloader

        master.reloader = Reloader(reactor, master.supervisor.restart, dict(os.environ))
        master.reloader.setServiceParent(root)
    SupervisorService(master).setServiceParent(root)
    return root


class Master(Service):
    """The master's own part: the shared socket (closed last), the memory of
    the rate-limit buckets its workers share (with rate limits on; with
    REDIS_URL it holds their limits while Redis does not answer), the
    workers' command line and configuration, and its answers on the control
    socket."""

    def __init__(
        self, reactor: Any, config: Config, sock: socket.socket, fail: Callable[[str], None]
    ) -> None:
        from crackershop.ops.control import ProcessFigures

        self.reactor = reactor
        self.config = config
        self.socket = sock
        host, port = sock.getsockname()[:2]
        self.address: tuple[str, int] = (host, port)
        self.fail = fail
        self.embedded: Any = None
        self.reloader: Any = None
        # what the workers connect to, known once the database is ready
        self.uri = config.mongo_uri
        self.board = AcceptBoard.create()
        self.rate_table: Any = None
        if config.rate_limit_enabled:
            from crackershop.ratelimit.shared import BucketTable

            self.rate_table = BucketTable.create()
        self.supervisor = Supervisor(
            reactor,
            self._spawn,
            worker_count(config),
            WorkerPolicy(graceful_timeout=config.graceful_timeout, max_memory=config.max_memory),
            rss,
            fail,
            not_accepting=self.board.clear,
        )
        self._observe_metrics()
        self._figures = ProcessFigures()

    def _observe_metrics(self) -> None:
        """The master's share of /metrics: restarts; and a worker that exits
        takes its live gauges (its memory among them) with it."""
        from crackershop.metrics import metrics, process_dead

        recorded = metrics()
        self.supervisor.on_replaced = lambda reason: recorded.worker_restarts.labels(reason).inc()
        self.supervisor.on_exit = process_dead

    def startService(self) -> None:
        super().startService()
        log.info("listening on {host}:{port}", host=self.address[0], port=self.address[1])

    def stopService(self) -> None:
        super().stopService()
        with contextlib.suppress(OSError):
            self.socket.close()
        if self.rate_table is not None:
            self.rate_table.close()
            self.rate_table = None
        log.info("master stopped")

    # -- the workers

    def helpers_ready(self) -> Deferred[None]:
        """Fires once the database answers."""
        database: Deferred[Any] = (
            self.embedded.whenReady() if self.embedded is not None else succeed(self.uri)
        )

        def ready(uri: str) -> None:
            self.uri = uri

        return database.addCallback(ready)

    def _spawn(self, worker: Worker, protocol: Any) -> Any:
        executable, argv = worker_command()
        env = dict(os.environ)
        env.update(
            {
                CONFIG_ENV: config_to_env(self.worker_config()),
                WORKER_ID_ENV: str(worker.id),
                MASTER_PID_ENV: str(os.getpid()),
                FAMILY_ENV: str(int(self.socket.family)),
            }
        )
        fds = {
            1: 1,
            2: 2,
            LISTEN_FD: self.socket.fileno(),
            TO_MASTER_FD: "r",
            FROM_MASTER_FD: "w",
            BOARD_FD: self.board.fd,
        }
        if self.rate_table is not None:
            env[RATE_TABLE_ENV] = str(RATE_TABLE_FD)
            fds[RATE_TABLE_FD] = self.rate_table.fd
        return self.reactor.spawnProcess(
            protocol,
            executable,
            [*argv, "--worker-id", str(worker.id)],
            env=env,
            childFDs=fds,
        )

    def worker_config(self) -> Config:
        """The master's effective configuration for a worker: the database
        it started, and no clustering of its own."""
        return replace(self.config, mongo_uri=self.uri, workers=0, reload=False)

    def rolling_restart(self) -> None:
        def failed(failure: Failure) -> None:
            log.failure("rolling restart failed", failure)

        self.supervisor.restart().addErrback(failed)

    # -- the control socket's commands (crackershop status|stop|restart|scale)

    def status(self) -> dict[str, Any]:
        from crackershop.ops.control import server_summary

        summary = server_summary(
            self.config, "cluster", self.address[0], self.address[1], self.config.redis_url
        )
        if self.embedded is not None and self.uri:
            summary["database"] = mask_uri(self.uri) + " (embedded)"
        rows = self.supervisor.status()
        for row in rows:
            row.update(self._figures(row.get("pid")))
        self._figures.forget({r["pid"] for r in rows if r.get("pid")})
        summary["workers"] = rows
        summary["children"] = [self.embedded.describe()] if self.embedded is not None else []
        if self.reloader is not None:
            summary["reload"] = self.reloader.describe()
        return summary

    def stop(self) -> dict[str, Any]:
        log.info("stopping on request from the control socket")
        self.reactor.callLater(0, self.reactor.stop)
        return {"pid": os.getpid()}

    def restart(self, worker: Optional[int]) -> Deferred[dict[str, Any]]:
        from crackershop.ops.control import ControlError

        try:
            d = self.supervisor.restart(worker)
        except KeyError:
            raise ControlError(f"there is no worker {worker}") from None
        before = {w.id for w in self.supervisor.workers.values()}

        def done(_: Any) -> dict[str, Any]:
            now = {w.id for w in self.supervisor.workers.values() if w.state != "draining"}
            return {"replaced": sorted(before - now), "workers": sorted(now)}

        return d.addCallback(done)

    def scale(self, count: int) -> dict[str, Any]:
        before = len(self.supervisor.slots)
        self.supervisor.scale(count)
        return {"before": before, "after": len(self.supervisor.slots)}


class SupervisorService(Service):
    """The workers: spawned once the helpers they need are ready; drained
    (and killed after the grace period) when the service stops. It is added
    last, so it stops first."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self._waiting: Optional[Deferred[None]] = None

    def startService(self) -> None:
        super().startService()
        self._waiting = self.master.helpers_ready()
        self._waiting.addCallbacks(self._spawn, self._no_helpers)

    def _spawn(self, _: None) -> None:
        self._waiting = None
        if self.running:
            self.master.supervisor.start()

    def _no_helpers(self, failure: Failure) -> None:
        self._waiting = None
        if self.running:
            self.master.fail(str(failure.value))

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._waiting is not None:
            self._waiting.cancel()
        return self.master.supervisor.stop()
