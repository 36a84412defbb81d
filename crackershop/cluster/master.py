"""The master process: owns the listening socket, the embedded database and
the cluster's log file, and runs the :class:`Supervisor` over real worker
processes. It never serves HTTP itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from typing import Any, Callable, Optional

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile

from crackershop.cluster.board import AcceptBoard
from crackershop.cluster.link import (
    BOARD_FD,
    CONFIG_ENV,
    FAMILY_ENV,
    FROM_MASTER_FD,
    LISTEN_FD,
    MASTER_PID_ENV,
    TO_MASTER_FD,
    WORKER_ID_ENV,
    config_to_env,
)
from crackershop.cluster.supervisor import Policy, Supervisor, Worker
from crackershop.config import Config
from crackershop.server.logs import server_observer

log = Logger()

BACKLOG = 1024


def worker_command() -> tuple[str, list[str]]:
    """The worker's executable and argv: ``python -m crackershop.cluster.worker``,
    or, in a frozen (PyInstaller) build that has no ``-m``, the binary itself
    with its private ``_worker`` sub-command."""
    if getattr(sys, "frozen", False):
        return sys.executable, [sys.executable, "_worker"]
    return sys.executable, [sys.executable, "-m", "crackershop.cluster.worker"]


def worker_count(config: Config) -> int:
    if config.reload and config.workers in (0, 1):
        return 1
    if config.workers == -1:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:
            return max(1, os.cpu_count() or 1)
    return config.workers


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


class Master(MultiService):
    """The root service of ``twistd crackershop --workers=N`` (N > 1)."""

    def __init__(self, reactor: Any, config: Config, fail: Callable[[str], None]) -> None:
        super().__init__()
        self.reactor = reactor
        self.config = config
        self.fail = fail
        self.socket: Optional[socket.socket] = None
        self.embedded: Any = None
        self.logfile: Optional[LogFile] = None
        self.board = AcceptBoard.create()
        self.supervisor = Supervisor(
            reactor,
            self._spawn,
            worker_count(config),
            Policy(graceful_timeout=config.graceful_timeout, max_memory=config.max_memory),
            rss,
            self._fatal,
            not_accepting=self.board.clear,
        )
        self._observe_metrics()
        self._uri = config.mongo_uri
        self._redis_url = ""
        self.redis: Any = None
        self.redirecting: Any = None
        self.reloader: Any = None
        self._stopped: Optional[Deferred[None]] = None
        self.control: Any = None
        self._figures: Any = None
        self._address: tuple[str, int] = (config.host, config.port)

    def _observe_metrics(self) -> None:
        """The master's share of /metrics: restarts; and a worker that exits
        takes its live gauges (its memory among them) with it."""
        from crackershop.metrics import metrics, process_dead

        recorded = metrics()
        self.supervisor.on_replaced = lambda reason: recorded.worker_restarts.labels(reason).inc()
        self.supervisor.on_exit = process_dead

    # -- logging: the master writes the one log file, for itself and its workers

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        if hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.observer())

    def observer(self) -> ILogObserver:
        observer, self.logfile = server_observer(self.config)
        return observer

    def reopen_logs(self) -> None:
        if self.logfile is not None:
            self.logfile.reopen()
            log.info("reopened the log file")

    # -- lifecycle

    def startService(self) -> None:
        super().startService()
        self.reactor.callWhenRunning(self._start)

    def _start(self) -> None:
        from crackershop import __version__

        log.info(
            "crackershop {version} master starting ({environment}), {n} workers",
            version=__version__,
            environment=self.config.environment,
            n=self.supervisor.count,
        )
        try:
            self.socket = bind(self.config.host, self.config.port)
        except OSError as e:
            self.fail(f"cannot listen on {self.config.host}:{self.config.port}: {e}")
            return
        host, port = self.socket.getsockname()[:2]
        self._address = (host, port)
        log.info("listening on {host}:{port}", host=host, port=port)
        try:
            self._listen_control()
        except Exception as e:
            self.fail(f"cannot open the control socket in {self.config.run_dir}: {e}")
            return
        try:
            self._tls(port)
        except Exception as e:
            self.fail(str(e))
            return
        self._signals()
        if self.config.reload:
            from crackershop.cluster.reload import Reloader

            self.reloader = Reloader(self.reactor, self.supervisor.restart, dict(os.environ))
            self.reloader.start()
        d = self._database_uri()
        d.addCallback(self._private_redis)
        d.addCallbacks(self._spawn_workers, self._no_database)

    # -- the control socket (crackershop status|stop|restart|scale)

    def _listen_control(self) -> None:
        from crackershop.ops.control import ProcessFigures, listen

        self._figures = ProcessFigures()
        self.control = listen(self.reactor, self.config.run_dir, self)

    def status(self) -> dict[str, Any]:
        from crackershop.ops.control import server_summary

        summary = server_summary(
            self.config, "cluster", self._address[0], self._address[1], self._redis_url
        )
        if self.embedded is not None and self._uri:
            from crackershop.config import mask_uri

            summary["database"] = mask_uri(self._uri) + " (embedded)"
        rows = self.supervisor.status()
        for row in rows:
            row.update(self._figures(row.get("pid")))
        self._figures.forget({r["pid"] for r in rows if r.get("pid")})
        summary["workers"] = rows
        summary["children"] = [
            child.describe() for child in (self.embedded, self.redis) if child is not None
        ]
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

    def _tls(self, port: int) -> None:
        """Check the certificate and key before any worker starts (each worker
        reads them again), and serve the redirect port from the master."""
        if not self.config.tls_cert:
            return
        from crackershop.server.tls import RedirectSite, server_options

        server_options(self.config.tls_cert, self.config.tls_key)
        if self.config.http_redirect_port:
            self.redirecting = self.reactor.listenTCP(
                self.config.http_redirect_port,
                RedirectSite(port, self.config.public_url, self.reactor),
                interface=self.config.host,
            )

    def _private_redis(self, uri: str) -> Deferred[str]:
        """With rate limits on and no Redis configured, the workers share a
        private Redis on a UNIX socket in RUN_DIR, so a client's limit holds
        across them."""
        if not needs_private_redis(self.config):
            return succeed(uri)
        from crackershop.children.embedded_redis import EmbeddedRedis

        self.redis = EmbeddedRedis(self.reactor, self.config.run_dir)
        self.redis.startService()

        def ready(url: str) -> str:
            self._redis_url = url
            return uri

        d: Deferred[str] = self.redis.whenReady()
        return d.addCallback(ready)

    def _database_uri(self) -> Deferred[str]:
        if self.config.mongo_uri:
            return succeed(self.config.mongo_uri)
        from crackershop.children.embedded import EmbeddedMongo

        self.embedded = EmbeddedMongo(self.reactor, self.config.data_dir)
        self.embedded.startService()
        d: Deferred[str] = self.embedded.whenReady()
        return d

    def _spawn_workers(self, uri: str) -> None:
        self._uri = uri
        if self.running:
            self.supervisor.start()

    def _no_database(self, failure: Failure) -> None:
        self.fail(str(failure.value))

    def _fatal(self, message: str) -> None:
        self.fail(message)

    def _spawn(self, worker: Worker, protocol: Any) -> Any:
        assert self.socket is not None
        executable, argv = worker_command()
        env = dict(os.environ)
        env.update(
            {
                CONFIG_ENV: config_to_env(self._worker_config()),
                WORKER_ID_ENV: str(worker.id),
                MASTER_PID_ENV: str(os.getpid()),
                FAMILY_ENV: str(int(self.socket.family)),
            }
        )
        return self.reactor.spawnProcess(
            protocol,
            executable,
            [*argv, "--worker-id", str(worker.id)],
            env=env,
            childFDs={
                1: 1,
                2: 2,
                LISTEN_FD: self.socket.fileno(),
                TO_MASTER_FD: "r",
                FROM_MASTER_FD: "w",
                BOARD_FD: self.board.fd,
            },
        )

    def _worker_config(self) -> Config:
        from dataclasses import replace

        if self._redis_url:
            return replace(
                self.config, mongo_uri=self._uri, redis_url=self._redis_url, workers=0, reload=False
            )
        return replace(self.config, mongo_uri=self._uri, workers=0, reload=False)

    def _signals(self) -> None:
        """SIGHUP rolling restart, SIGTTIN/SIGTTOU one worker more/less,
        SIGUSR1 reopen the log file. (SIGTERM/SIGINT: tap.py stops twistd,
        which stops this service gracefully.)"""
        actions = {
            signal.SIGHUP: self._restart,
            signal.SIGTTIN: self.supervisor.add_worker,
            signal.SIGTTOU: self.supervisor.remove_worker,
            signal.SIGUSR1: self.reopen_logs,
        }

        def handler(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(_run, signum, actions[signal.Signals(signum)])

        for signum in actions:
            signal.signal(signum, handler)

    def _restart(self) -> None:
        def failed(failure: Failure) -> None:
            log.failure("rolling restart failed", failure)

        self.supervisor.restart().addErrback(failed)

    def stopService(self) -> Deferred[None]:
        """Workers drain first (they may still need the database), then the
        embedded database stops, then the socket closes."""
        if self._stopped is not None:
            return self._stopped
        super().stopService()
        if self.reloader is not None:
            self.reloader.stop()
        d = self.supervisor.stop()

        def after(_: Any) -> Any:
            helpers = [h.stopService() for h in (self.embedded, self.redis) if h is not None]
            if self.redirecting is not None:
                self.redirecting.stopListening()
            return gatherResults(helpers) if helpers else None

        def close(_: Any) -> None:
            if self.socket is not None:
                with contextlib.suppress(OSError):
                    self.socket.close()
            log.info("master stopped")

        if self.control is not None:
            self.control.stopListening()
            self.control = None
        d.addBoth(after)
        d.addBoth(close)
        self._stopped = d
        return d


def needs_private_redis(config: Config) -> bool:
    return config.rate_limit_enabled and not (config.redis_url or config.redis_host)


def _run(signum: int, action: Callable[[], Any]) -> None:
    log.info("received {name}", name=signal.Signals(signum).name)
    action()
