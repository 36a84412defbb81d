"""Signals as a service: the handlers a server process installs while its
tree runs.

SIGTERM and SIGINT always stop the server gracefully, and it exits 0 (a
requested shutdown that completed is a success, for systemd and scripts);
each process adds its own (a single process restarts in place on SIGHUP, a
master rolls its workers). Handlers are installed once the reactor runs,
after twistd's own, and run their action in the reactor thread.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any, Callable

from twisted.application.service import Service
from twisted.logger import Logger

log = Logger()


class SignalService(Service):
    def __init__(self, reactor: Any, actions: Mapping[Any, Callable[[], Any]]) -> None:
        self.reactor = reactor
        self.actions: dict[Any, Callable[[], Any]] = {
            signal.SIGTERM: self._stop,
            signal.SIGINT: self._stop,
            **actions,
        }

    def startService(self) -> None:
        super().startService()
        self.reactor.callWhenRunning(self._install)

    def _install(self) -> None:
        for signum in self.actions:
            signal.signal(signum, self._received)

    def _received(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self._run, signum)

    def _run(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum in (signal.SIGTERM, signal.SIGINT):
            log.info("received {name}, shutting down", name=name)
        else:
            log.info("received {name}", name=name)
        self.actions[signum]()

    def _stop(self) -> None:
        if self.reactor.running:
            self.reactor.stop()
