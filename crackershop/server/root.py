"""The root of a process's service tree (:class:`Root`: a single process,
or a cluster's master; a worker's root is an :class:`InOrder`).

Its children start in the order they were added and stop in the reverse
order, each only once the one after it has stopped: the listener stops
before the database pool it serves from, the pool before the embedded
database, a master's workers before the helpers they use. It also gives
twistd the process's log observer, and is where the process fails: the
reason is logged, once, the reactor stops (the tree with it), and
the process ends with exit status 1 once the whole tree has stopped
(twistd itself has no exit status but 0).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Optional

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import ILogObserver, Logger

from crackershop.config import Config

log = Logger()

EXIT_FAILED = 1


class InOrder(MultiService):
    """Children start in the order they were added; they stop one at a time,
    last added first, each once the one after it has stopped."""

    def __init__(self) -> None:
        super().__init__()
        self._stopping: Optional[Deferred[None]] = None

    def stopService(self) -> Deferred[None]:
        if self._stopping is not None:
            return self._stopping
        super(MultiService, self).stopService()
        self._stopping = Deferred.fromCoroutine(self._stop_children())
        return self._stopping

    async def _stop_children(self) -> None:
        for child in reversed(list(self)):
            if not IService(child).running:
                continue
            try:
                await maybeDeferred(child.stopService)
            except Exception:
                log.failure("stopping {service} failed", service=type(child).__name__)
        self.stopped()

    def stopped(self) -> None:
        """Called once every child has stopped."""


class Root(InOrder):
    """``workers``: how many a master runs (None: a single process)."""

    def __init__(self, reactor: Any, config: Config, workers: Optional[int] = None) -> None:
        super().__init__()
        self.reactor = reactor
        self.config = config
        self.workers = workers
        self.logfile: Any = None
        self.log_writer: Any = None
        self.exit_code = 0

    def startService(self) -> None:
        from crackershop import __version__

        fields = {"version": __version__, "environment": self.config.environment}
        if self.workers is None:
            log.info("crackershop {version} starting ({environment})", **fields)
        else:
            log.info(
                "crackershop {version} master starting ({environment}), {n} workers",
                n=self.workers,
                **fields,
            )
        super().startService()

    # -- the log: standard output and LOG_DIR/crackershop.log

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        if hasattr(parent, "setComponent"):
            from crackershop.server.logs import server_observer

            self.log_writer, self.logfile = server_observer(self.config, self.reactor)
            parent.setComponent(ILogObserver, self.log_writer)

    def reopen_logs(self) -> None:
        if self.log_writer is not None:
            self.log_writer.reopen()
            log.info("reopened the log file")

    # -- failing

    def fail(self, message: str) -> None:
        """Stop because the server cannot run, and exit 1. The reason is one
        critical log line (on standard output and in the log file; twistd
        has taken standard error into the log too, so it is not printed
        again there)."""
        if self.exit_code:
            return
        self.exit_code = EXIT_FAILED
        log.critical("{reason}", reason=message)
        if self.reactor.running:
            self.reactor.stop()
        else:
            self.reactor.callWhenRunning(self.reactor.stop)

    def stopped(self) -> None:
        if self.exit_code:
            self._exit()

    def _exit(self) -> None:
        # Everything under the root has stopped; what twistd would do next
        # ends in exit status 0, so the process ends here with its own.
        for stream in (self.log_writer, sys.stdout, sys.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        os._exit(self.exit_code)


class Refused(Root):
    """A tree that cannot be built (a certificate that does not load, a port
    that cannot be bound): on start it says why and the process exits 1,
    with nothing else started."""

    def __init__(self, reactor: Any, config: Config, reason: str) -> None:
        super().__init__(reactor, config)
        self.reason = reason

    def startService(self) -> None:
        super().startService()
        self.reactor.callWhenRunning(self.fail, self.reason)
