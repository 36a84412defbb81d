"""A helper server run as a child process of crackershop (the embedded
database).

- Started with ``reactor.spawnProcess`` behind :mod:`crackershop.children.childexec`,
  so it gets SIGTERM when the server dies, however the server dies.
- Ready when it answers its protocol (a ping), polled until
  ``start_timeout``; never when a log line appears.
- Restarted if it dies after it was ready, with a back-off that doubles
  while it keeps dying soon after coming back, always with the same
  command line, on the same address.
- Stopped with SIGTERM, then SIGKILL if it lingers.
- Its pid (and the server's) is kept in a pid file; a server starting on
  the same files finds a child left over by a server that is gone, stops
  it, and starts cleanly, and refuses files a running server still uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet import error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from crackershop.children import childexec

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


class Processes:
    """The processes of this machine, by pid and start time (psutil), for
    telling a leftover child from an unrelated process that reuses its pid."""

    def started(self, pid: int) -> Optional[float]:
        """When ``pid`` started, or None if no such process is running."""
        import psutil

        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return float(process.create_time())
        except (psutil.Error, OSError):
            return None

    def running(self, pid: int, started: Optional[float]) -> bool:
        now = self.started(pid)
        return now is not None and started is not None and abs(now - started) < 1.0

    def signal(self, pid: int, signum: int) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


class ChildService(Service):
    """Subclasses say how to start the child (:meth:`command`), where it
    answers (:attr:`address`), how to ask whether it answers (:meth:`probe`)
    and where its pid file is."""

    what = "the child process"
    role = "child"  # its name in `crackershop status`
    unavailable: type[ChildUnavailable] = ChildUnavailable
    start_timeout = 60.0
    stop_timeout = 15.0
    probe_interval = 0.2
    probe_timeout = 2.0
    first_restart_delay = 0.5
    max_restart_delay = 10.0
    # a child that stayed up this long is restarted after the first delay again
    stable_after = 30.0

    def __init__(self, reactor: Any, processes: Optional[Processes] = None) -> None:
        self.reactor = reactor
        self.processes = processes or Processes()
        self.child: Optional[_Output] = None
        self.transport: Any = None
        self.ready = False
        self.restarts = 0
        self._ready_at: Optional[float] = None
        self._waiting: list[Deferred[str]] = []
        self._stopping = False
        self._timer: Any = None
        self._probing: Any = None
        self._restarting: Any = None
        self._ready_once = False
        self._restart_delay = self.first_restart_delay
        # why the last start failed, for whoever asks whenReady afterwards
        self._failed: Optional[str] = None

    # -- for subclasses

    def command(self) -> list[str]:
        """The executable and its arguments; raise ``self.unavailable`` if it cannot run."""
        raise NotImplementedError

    @property
    def address(self) -> Optional[str]:
        """Where the child answers (known once :meth:`command` has run)."""
        raise NotImplementedError

    def probe(self) -> Deferred[None]:
        """Fires if the child answers its protocol now; fails otherwise."""
        raise NotImplementedError

    @property
    def pid_file(self) -> Optional[Path]:
        """Where the child's pid is kept while it runs (None: nowhere)."""
        return None

    def became_ready(self) -> None:
        """Called once each time the child is ready."""

    def stopped(self) -> None:
        """Called when the child has exited because the service stopped."""

    def error_line(self, line: bytes) -> bool:
        """Whether an output line reports an error worth logging."""
        return b"Traceback" in line or b" ERROR " in line

    # -- the service

    def whenReady(self) -> Deferred[str]:
        if self.ready and self.child is not None and self.address is not None:
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
        d = self._clear_leftover()

        def go(_: None) -> None:
            if self.running and not self._stopping and self.child is None:
                self._spawn()

        d.addCallbacks(go, lambda failure: self._fail(str(failure.value)))

    def describe(self) -> dict[str, Any]:
        """This child for `crackershop status`."""
        if self.child is not None:
            state = "ready" if self.ready else "starting"
        elif self._restarting is not None and self._restarting.active():
            state = "restarting"
        elif self._failed is not None:
            state = "failed"
        else:
            state = "stopped"
        pid = getattr(self.transport, "pid", None) if self.child is not None else None
        uptime = None
        if self.ready and self._ready_at is not None:
            uptime = self.reactor.seconds() - self._ready_at
        return {
            "name": self.role,
            "pid": pid,
            "state": state,
            "restarts": self.restarts,
            "uptime": uptime,
        }

    def _spawn(self) -> None:
        try:
            args = self.command()
        except ChildUnavailable as e:
            self._fail(str(e))
            return
        self.child = _Output(self)
        self.ready = False
        argv = childexec.command(args)
        self.transport = self.reactor.spawnProcess(
            self.child, argv[0], argv, env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r"}
        )
        self._write_pid_file()
        self._timer = self.reactor.callLater(self.start_timeout, self._too_slow)
        self._probe_later()

    def line(self, line: bytes) -> None:
        if self.error_line(line):
            log.error("{what}: {line}", what=self.what, line=line.decode("utf-8", "replace"))

    # -- readiness: the child answers its protocol

    def _probe_later(self) -> None:
        self._probing = self.reactor.callLater(self.probe_interval, self._probe_now)

    def _probe_now(self) -> None:
        self._probing = None
        child = self.child
        if child is None or self.ready:
            return

        def answered(_: None) -> None:
            if child is self.child and not self.ready:
                self._became_ready()

        def silent(failure: Failure) -> None:
            if child is self.child and not self.ready:
                self._probe_later()

        self.probe().addCallbacks(answered, silent)

    def _became_ready(self) -> None:
        self.ready = True
        self._ready_at = self.reactor.seconds()
        self._ready_once = True
        self._failed = None
        self._cancel(self._timer)
        self.became_ready()
        address = self.address
        assert address is not None
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(address)

    @staticmethod
    def _cancel(call: Any) -> None:
        if call is not None and call.active():
            call.cancel()

    def _too_slow(self) -> None:
        self._timer = None
        message = f"{self.what} did not answer within {self.start_timeout:.0f} seconds"
        if self._ready_once:
            log.error("{reason}; killing it", reason=message)
        else:
            self._fail(message)
        self._signal(signal.SIGKILL)

    def _fail(self, message: str) -> None:
        self._failed = message
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(self.unavailable(message))
        if not waiting and self._ready_once:
            # Nobody will ask: say it here. (A first start's failure is given
            # to whoever waits for the child, which the server always does,
            # and said once, there.) Not "message": twisted.logger reserves
            # that key for legacy events.
            log.error("{reason}", reason=message)

    # -- exits and restarts

    def ended(self, child: _Output, reason: Failure) -> None:
        if child is not self.child:
            return
        up = None
        if self.ready and self._ready_at is not None:
            up = self.reactor.seconds() - self._ready_at
        self.child = None
        self.transport = None
        self.ready = False
        self._cancel(self._timer)
        self._cancel(self._probing)
        self._remove_pid_file()
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
            self.reactor.callLater(SHUTDOWN_GRACE, self._judge, reason, up)
            return
        self._unexpected(reason, up)

    def _server_stopping(self) -> bool:
        """Whether the server's tree has begun to stop (its root stops its
        children one at a time, so this one's turn may come much later)."""
        root = self.parent
        while root is not None and getattr(root, "parent", None) is not None:
            root = root.parent
        return root is not None and not root.running

    def _judge(self, reason: Failure, up: Optional[float]) -> None:
        if self.child is not None:
            return  # started again meanwhile
        if self._stopping or self._server_stopping():
            log.info("{what} has stopped", what=self.what)
            self.stopped()
            return
        self._unexpected(reason, up)

    def _unexpected(self, reason: Failure, up: Optional[float]) -> None:
        if up is not None and up >= self.stable_after:
            self._restart_delay = self.first_restart_delay
        delay = self._restart_delay
        self._restart_delay = min(delay * 2, self.max_restart_delay)
        log.error(
            "{what} exited unexpectedly ({reason}); restarting in {delay}s",
            what=self.what,
            reason=str(reason.value),
            delay=delay,
        )
        self._restarting = self.reactor.callLater(delay, self._respawn)

    def _respawn(self) -> None:
        self._restarting = None
        if not self._stopping and self.child is None and self.running:
            self.restarts += 1
            self._spawn()

    def _signal(self, signum: int) -> None:
        if self.transport is not None:
            with contextlib.suppress(error.ProcessExitedAlready):
                self.transport.signalProcess(signum)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        self._cancel(self._timer)
        self._cancel(self._probing)
        self._cancel(self._restarting)
        child = self.child
        if child is None:
            return succeed(None)
        self._signal(signal.SIGTERM)
        killer = self.reactor.callLater(self.stop_timeout, self._signal, signal.SIGKILL)

        def done(_: None) -> None:
            self._cancel(killer)

        child.ended.addCallback(done)
        return child.ended

    # -- the pid file, and a child left over by a server that is gone

    def _write_pid_file(self) -> None:
        path = self.pid_file
        pid = getattr(self.transport, "pid", None)
        if path is None or pid is None:
            return
        me = os.getpid()
        record = {
            "pid": pid,
            "started": self.processes.started(pid),
            "server": me,
            "server_started": self.processes.started(me),
        }
        try:
            path.write_text(json.dumps(record) + "\n")
        except OSError as e:
            log.warn("cannot write {path}: {error}", path=str(path), error=e.strerror)

    def _remove_pid_file(self) -> None:
        if self.pid_file is not None:
            with contextlib.suppress(OSError):
                self.pid_file.unlink()

    def _clear_leftover(self) -> Deferred[None]:
        path = self.pid_file
        if path is None or not path.is_file():
            return succeed(None)
        try:
            record = json.loads(path.read_text())
            pid, started = int(record["pid"]), record.get("started")
            server, server_started = int(record["server"]), record.get("server_started")
        except (OSError, ValueError, KeyError, TypeError):
            self._remove_pid_file()
            return succeed(None)
        if server != os.getpid() and self.processes.running(server, server_started):
            return fail(
                self.unavailable(
                    f"{self.what} of another running server (pid {server}) uses {path.parent}; "
                    "stop that server first"
                )
            )
        if not self.processes.running(pid, started):
            self._remove_pid_file()  # stale: its server and the child are gone
            return succeed(None)
        log.warn(
            "{what} of a server that is gone (pid {pid}) still runs; stopping it",
            what=self.what,
            pid=pid,
        )
        return Deferred.fromCoroutine(self._stop_leftover(pid, started))

    async def _stop_leftover(self, pid: int, started: Optional[float]) -> None:
        step = 0.1
        for signum, patience in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            self.processes.signal(pid, signum)
            waited = 0.0
            while waited < patience:
                if not self.processes.running(pid, started):
                    self._remove_pid_file()
                    return
                await deferLater(self.reactor, step, lambda: None)
                waited += step
        raise self.unavailable(f"{self.what} left by an earlier server (pid {pid}) will not stop")
