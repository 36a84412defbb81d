"""The embedded default database: SecantusDB's ``secantusd-py`` as a child
process, for a server started with no MONGO_URI.

It is started with ``reactor.spawnProcess`` (never imported: it is GPL and
runs in its own process), listens on 127.0.0.1 only, keeps its files in the
data directory, is restarted if it dies, and is stopped with the server.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet import error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class EmbeddedUnavailable(Exception):
    """The embedded database could not be found or started."""


def find_secantusd() -> Optional[str]:
    """``secantusd-py`` beside this interpreter (a virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / "secantusd-py"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("secantusd-py")


def uri_file(data_dir: Path) -> Path:
    return data_dir.with_name(data_dir.name + ".uri")


class _Child(ProcessProtocol):
    def __init__(self, owner: EmbeddedMongo) -> None:
        self.owner = owner
        self.buffer = b""
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self._lines(data)

    def errReceived(self, data: bytes) -> None:
        self._lines(data)

    def _lines(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.owner.line(line)

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)
        self.owner.ended(self, reason)


class EmbeddedMongo(Service):
    """Runs the embedded database and tells, through :meth:`whenReady`, the
    URI to connect to once it accepts connections."""

    def __init__(
        self, reactor: Any, data_dir: str, executable: Optional[str] = None, port: int = 0
    ) -> None:
        self.reactor = reactor
        self.data_dir = Path(data_dir)
        self.executable = executable
        self.port = port
        self.uri: Optional[str] = None
        self.child: Optional[_Child] = None
        self.transport: Any = None
        self._waiting: list[Deferred[str]] = []
        self._stopping = False
        self._start_timer: Any = None
        self._restart_delay = 0.5
        self._ready_once = False

    def whenReady(self) -> Deferred[str]:
        if self.uri is not None and self.child is not None:
            return succeed(self.uri)
        d: Deferred[str] = Deferred()
        self._waiting.append(d)
        return d

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self._spawn()

    def _spawn(self) -> None:
        executable = self.executable or find_secantusd()
        if executable is None:
            self._fail(
                "the embedded database is not installed: install crackershop[embedded] "
                "(the secantusdb package) or set MONGO_URI"
            )
            return
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._fail(f"cannot create the data directory {self.data_dir}: {e.strerror}")
            return
        args = [
            executable,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-path",
            str(self.data_dir),
            "--log-level",
            "WARNING" if self._ready_once else "INFO",
        ]
        self.child = _Child(self)
        self.uri = None
        log.info("starting the embedded database in {path}", path=str(self.data_dir))
        self.transport = self.reactor.spawnProcess(
            self.child, executable, args, env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r"}
        )
        self._start_timer = self.reactor.callLater(START_TIMEOUT, self._too_slow)

    def line(self, line: bytes) -> None:
        match = LISTENING.search(line)
        if match and self.uri is None:
            host, port = match.group(1).decode(), int(match.group(2))
            self.port = port
            self.uri = f"mongodb://{host}:{port}"
            self._ready_once = True
            self._restart_delay = 0.5
            if self._start_timer is not None and self._start_timer.active():
                self._start_timer.cancel()
            log.info("the embedded database is listening on {host}:{port}", host=host, port=port)
            self._publish()
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(self.uri)
        elif b" ERROR " in line or b"Traceback" in line:
            log.error("embedded database: {line}", line=line.decode("utf-8", "replace"))

    @property
    def uri_file(self) -> Path:
        """Where the running database's URI is written, for ``crackershop seed``."""
        return uri_file(self.data_dir)

    def _publish(self) -> None:
        try:
            self.uri_file.write_text(f"{self.uri}\n")
        except OSError as e:
            log.warn("cannot write {path}: {error}", path=str(self.uri_file), error=e.strerror)

    def _too_slow(self) -> None:
        self._fail(f"the embedded database did not start within {START_TIMEOUT:.0f} seconds")
        self._signal(signal.SIGKILL)

    def _fail(self, message: str) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(EmbeddedUnavailable(message))
        if not waiting:
            log.error("{message}", message=message)

    def ended(self, child: _Child, reason: Failure) -> None:
        if child is not self.child:
            return
        self.child = None
        self.transport = None
        if self._start_timer is not None and self._start_timer.active():
            self._start_timer.cancel()
        if self._stopping:
            log.info("the embedded database has stopped")
            with contextlib.suppress(OSError):
                self.uri_file.unlink()
            return
        if not self._ready_once:
            self._fail(
                f"the embedded database exited while starting ({reason.value}); "
                f"is another server using {self.data_dir}?"
            )
            return
        log.error(
            "the embedded database exited unexpectedly ({reason}); restarting in {delay}s",
            reason=str(reason.value),
            delay=self._restart_delay,
        )
        self.reactor.callLater(self._restart_delay, self._respawn)
        self._restart_delay = min(self._restart_delay * 2, 10.0)

    def _respawn(self) -> None:
        if not self._stopping and self.child is None:
            self._spawn()

    def _signal(self, signum: int) -> None:
        if self.transport is not None:
            with contextlib.suppress(error.ProcessExitedAlready):
                self.transport.signalProcess(signum)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        if self._start_timer is not None and self._start_timer.active():
            self._start_timer.cancel()
        child = self.child
        if child is None:
            return succeed(None)
        self._signal(signal.SIGTERM)
        killer = self.reactor.callLater(STOP_TIMEOUT, self._signal, signal.SIGKILL)

        def done(result: None) -> None:
            if killer.active():
                killer.cancel()

        child.ended.addCallback(done)
        return child.ended
