"""A helper server run as a child process of crackershop (the embedded
database, a private Redis): started with ``reactor.spawnProcess``, ready
once a line of its output says where it listens, restarted with a back-off
if it dies after that, and stopped with SIGTERM, then SIGKILL if it lingers.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet import error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()


# How long a child that stopped cleanly (exit 0, SIGINT, SIGTERM) is given
# before that counts as unexpected: time for this server's own shutdown to
# begin when both got the same ^C.
SHUTDOWN_GRACE = 1.0


def _clean(reason: Failure) -> bool:
    value: Any = reason.value
    if isinstance(value, error.ProcessDone):
        return True
    return getattr(value, "signal", None) in (signal.SIGINT, signal.SIGTERM) or (
        getattr(value, "exitCode", None) == 0
    )


class ChildUnavailable(Exception):
    """The child could not be found or started; the message says why."""


class _Output(ProcessProtocol):
    def __init__(self, owner: ChildService) -> None:
        self.owner = owner
        self.buffer = b""
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.owner.line(line)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)
        self.owner.ended(self, reason)


class ChildService(Service):
    """Subclasses say how to start the child (:meth:`command`), how to see
    that it is ready (:meth:`ready_address`) and what it is called."""

    what = "the child process"
    unavailable: type[ChildUnavailable] = ChildUnavailable
    start_timeout = 60.0
    stop_timeout = 15.0
    max_restart_delay = 10.0

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.address: Optional[str] = None
        self.child: Optional[_Output] = None
        self.transport: Any = None
        self._waiting: list[Deferred[str]] = []
        self._stopping = False
        self._timer: Any = None
        self._ready_once = False
        self._restart_delay = 0.5
        # why the last start failed, for whoever asks whenReady afterwards
        self._failed: Optional[str] = None
        self._shutdown = False
        self._trigger: Any = None

    # -- for subclasses

    def command(self) -> list[str]:
        """The executable and its arguments; raise ``self.unavailable`` if it cannot run."""
        raise NotImplementedError

    def ready_address(self, line: bytes) -> Optional[str]:
        """The address to connect to, if this output line says the child is ready."""
        raise NotImplementedError

    def became_ready(self) -> None:
        """Called once each time the child is ready."""

    def stopped(self) -> None:
        """Called when the child has exited because the service stopped."""

    def error_line(self, line: bytes) -> bool:
        """Whether an output line reports an error worth logging."""
        return b"Traceback" in line or b" ERROR " in line

    # -- the service

    def whenReady(self) -> Deferred[str]:
        if self.address is not None and self.child is not None:
            return succeed(self.address)
        if self._failed is not None:
            return fail(self.unavailable(self._failed))
        d: Deferred[str] = Deferred()
        self._waiting.append(d)
        return d

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self._failed = None
        if self._trigger is None:
            self._trigger = self.reactor.addSystemEventTrigger(
                "before", "shutdown", self._shutting_down
            )
        self._spawn()

    def _spawn(self) -> None:
        try:
            args = self.command()
        except ChildUnavailable as e:
            self._fail(str(e))
            return
        self.child = _Output(self)
        self.address = None
        self.transport = self.reactor.spawnProcess(
            self.child, args[0], args, env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r"}
        )
        self._timer = self.reactor.callLater(self.start_timeout, self._too_slow)

    def line(self, line: bytes) -> None:
        address = self.ready_address(line) if self.address is None else None
        if address is not None:
            self.address = address
            self._ready_once = True
            self._failed = None
            self._restart_delay = 0.5
            self._cancel_timer()
            self.became_ready()
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(address)
        elif self.error_line(line):
            log.error("{what}: {line}", what=self.what, line=line.decode("utf-8", "replace"))

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def _too_slow(self) -> None:
        self._fail(f"{self.what} did not start within {self.start_timeout:.0f} seconds")
        self._signal(signal.SIGKILL)

    def _fail(self, message: str) -> None:
        self._failed = message
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(self.unavailable(message))
        if not waiting:
            # (not "message": twisted.logger reserves that key for legacy events)
            log.error("{reason}", reason=message)

    def ended(self, child: _Output, reason: Failure) -> None:
        if child is not self.child:
            return
        self.child = None
        self.transport = None
        self.address = None
        self._cancel_timer()
        if self._stopping:
            log.info("{what} has stopped", what=self.what)
            self.stopped()
            return
        if not self._ready_once:
            self._fail(f"{self.what} exited while starting ({reason.value})")
            return
        if _clean(reason):
            # A terminal's ^C reaches the whole process group: the child may
            # stop a moment before this server begins its own shutdown.
            self.reactor.callLater(SHUTDOWN_GRACE, self._judge, reason)
            return
        self._unexpected(reason)

    def _shutting_down(self) -> None:
        self._shutdown = True

    def _judge(self, reason: Failure) -> None:
        if self.child is not None:
            return  # started again meanwhile
        if self._stopping or self._shutdown:
            log.info("{what} has stopped", what=self.what)
            self.stopped()
            return
        self._unexpected(reason)

    def _unexpected(self, reason: Failure) -> None:
        log.error(
            "{what} exited unexpectedly ({reason}); restarting in {delay}s",
            what=self.what,
            reason=str(reason.value),
            delay=self._restart_delay,
        )
        self.reactor.callLater(self._restart_delay, self._respawn)
        self._restart_delay = min(self._restart_delay * 2, self.max_restart_delay)

    def _respawn(self) -> None:
        if not self._stopping and self.child is None and self.running:
            self._spawn()

    def _signal(self, signum: int) -> None:
        if self.transport is not None:
            with contextlib.suppress(error.ProcessExitedAlready):
                self.transport.signalProcess(signum)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        self._cancel_timer()
        child = self.child
        if child is None:
            return succeed(None)
        self._signal(signal.SIGTERM)
        killer = self.reactor.callLater(self.stop_timeout, self._signal, signal.SIGKILL)

        def done(_: None) -> None:
            if killer.active():
                killer.cancel()

        child.ended.addCallback(done)
        return child.ended
