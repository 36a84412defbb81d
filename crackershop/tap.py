"""twistd's entry: ``twistd -n crackershop [options]``.

The options are generated from :mod:`crackershop.config`; a bad option or
value stops start-up with one line naming it, and exit code 2.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from twisted.application.service import IService, MultiService
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.python.failure import Failure

from crackershop import __version__
from crackershop.config import Config, ConfigError, declarations, flag_name, from_environment

log = Logger()
USAGE_ERROR = 2


def _usage_exit(message: str) -> None:
    sys.stderr.write(f"crackershop: {message}\n")
    sys.stderr.flush()
    raise SystemExit(USAGE_ERROR)


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = "Serve the crackershop API. Every option can also be set in the environment or .env."
    optParameters = [
        [flag_name(name), None, None, f"{decl.help} [env {decl.env}]"]
        for name, decl in declarations()
    ]

    def __init__(self) -> None:
        super().__init__()
        self.config: Optional[Config] = None
        self.warnings: Sequence[str] = ()
        # the settings given on the command line, to read the rest again on SIGHUP
        self.given: dict[str, str] = {}

    def parseOptions(self, options: Optional[Sequence[str]] = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            _usage_exit(str(e))

    def postOptions(self) -> None:
        given: dict[str, str] = {}
        for name, _ in declarations():
            value = self.get(flag_name(name))
            if value is not None:
                given[name] = value
        self.given = given
        try:
            self.config, self.warnings = from_environment(given)
        except ConfigError as e:
            _usage_exit(str(e))


class _Exit:
    code = 0


def fail(reactor: Any, message: str) -> None:
    """Stop the server because it cannot run, and exit non-zero."""
    log.critical("{message}", message=message)
    sys.stderr.write(f"crackershop: {message}\n")
    if _Exit.code == 0:
        _Exit.code = 1
        atexit.register(_exit_with_code)
    if reactor.running:
        reactor.stop()


def _exit_with_code() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_Exit.code)


class ShopService(MultiService):
    """The root service; also gives twistd its log observer (standard output
    and LOG_DIR/crackershop.log, as a cluster's master does)."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.logfile: Any = None

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        if hasattr(parent, "setComponent"):
            from crackershop.server.logs import server_observer

            observer, self.logfile = server_observer(self.config)
            parent.setComponent(ILogObserver, observer)

    def reopen_logs(self) -> None:
        if self.logfile is not None:
            self.logfile.reopen()
            log.info("reopened the log file")


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    config = options.config
    assert config is not None
    for warning in options.warnings:
        reactor.callWhenRunning(log.warn, "{warning}", warning=warning)
    reactor.callWhenRunning(_graceful_signals, reactor)
    from crackershop.metrics import prepare

    prepare(config.run_dir)
    if clustered(config):
        from crackershop.cluster.master import Master

        return Master(reactor, config, lambda message: fail(reactor, message))

    from crackershop.orders.placing import RepairService
    from crackershop.server.runtime import HttpService, database_service
    from crackershop.server.site import make_site

    root = ShopService(config)
    database = database_service(reactor, config, root)
    repair = RepairService(reactor, config.order_repair_after)
    repair.setServiceParent(root)
    tls = (config.tls_cert, config.tls_key) if config.tls_cert else None
    http = HttpService(
        reactor, config.host, config.port, tls, config.http_redirect_port, config.public_url
    )
    http.setServiceParent(root)

    def start() -> None:
        log.info(
            "crackershop {version} starting ({environment})",
            version=__version__,
            environment=config.environment,
        )
        try:
            http.prepare()
        except Exception as e:
            fail(reactor, str(e))
            return
        d = database.connect()
        d.addCallback(start_repair, repair, reactor, config)
        d.addCallback(serving)
        d.addErrback(lambda f: fail(reactor, _reason(f)))

    def serving(store: Any) -> None:
        from crackershop.server.restart import InPlace

        sites = [make_site(reactor, config, store)]
        http.listen(sites[0])

        def serve(new: Config) -> None:
            """The certificate first: a bad pair changes nothing at all."""
            tls = (new.tls_cert, new.tls_key) if new.tls_cert else None
            tls_options = http.tls_options(tls)
            site = make_site(reactor, new, store, previous=sites[-1])
            http.serve(site, tls, tls_options)
            sites[:] = [site]

        restart = InPlace(config, options.given, serve)
        _single_process_signals(reactor, restart, root)
        _control(reactor, config, http, database.child, restart)

    reactor.callWhenRunning(start)
    return root


def _control(reactor: Any, config: Config, http: Any, child: Any, restart: Any) -> None:
    """The control socket of a one-process server (the master has its own)."""
    from crackershop.ops.control import SingleProcess, listen

    children = [child] if child is not None else []
    try:
        port = listen(
            reactor, config.run_dir, SingleProcess(reactor, config, http, children, restart)
        )
    except Exception as e:
        log.error("no control socket in {run_dir}: {error}", run_dir=config.run_dir, error=str(e))
        return
    reactor.addSystemEventTrigger("before", "shutdown", port.stopListening)


def _single_process_signals(reactor: Any, restart: Any, root: ShopService) -> None:
    """SIGHUP restarts in place (what ``systemctl reload`` sends); SIGUSR1
    reopens the log file after an external rotation."""
    import contextlib
    import signal

    from crackershop.server.restart import RestartRefused

    def hup() -> None:
        log.info("received SIGHUP")
        # a refusal is logged, and the server goes on as it was
        with contextlib.suppress(RestartRefused):
            restart.restart()

    actions = {signal.SIGHUP: hup, signal.SIGUSR1: root.reopen_logs}

    def handler(signum: int, frame: Any) -> None:
        reactor.callFromThread(actions[signal.Signals(signum)])

    for signum in actions:
        signal.signal(signum, handler)


def clustered(config: Config) -> bool:
    """A master with workers, or (0, 1, ENABLE_CLUSTERING=false) one process.
    --reload always runs a master, so new code can replace a worker while
    the old one still serves."""
    return config.reload or (config.enable_clustering and config.workers not in (0, 1))


def start_repair(store: Any, repair: Any, reactor: Any, config: Config) -> Any:
    """Begin the order-repair sweep on a connected store; passes the store on."""
    from crackershop.orders.placing import Reservations

    repair.begin(Reservations(store, reactor, config.order_repair_after))
    return store


def _graceful_signals(reactor: Any) -> None:
    """SIGTERM and SIGINT stop the server and it exits 0: a requested
    shutdown that completed is a success, for systemd and for scripts."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        log.info("received {name}, shutting down", name=signal.Signals(signum).name)
        reactor.callFromThread(reactor.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _reason(failure: Failure) -> str:
    from twisted.internet.error import CannotListenError

    from crackershop.server.tls import TLSSetupError

    if failure.check(TLSSetupError):
        return str(failure.value)
    if failure.check(CannotListenError):
        err: Any = failure.value
        where = err.interface or "0.0.0.0"  # noqa: S104 (naming the wildcard, not binding it)
        return f"cannot listen on {where}:{err.port}: {err.socketError}"
    return str(failure.value)
