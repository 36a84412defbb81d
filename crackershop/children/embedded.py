"""The embedded default database: SecantusDB's ``secantusd-py`` as a child
process, for a server started with no MONGO_URI (in the single-file binary,
the binary's own private ``_database`` sub-command, which runs the same
server: :mod:`crackershop.children.secantusd`).

It is started with ``reactor.spawnProcess`` (never imported: it is GPL and
runs in its own process), listens on 127.0.0.1 only, keeps its files in the
data directory, syncs every commit to disk before acknowledging it, is
ready when it answers a ``ping`` command, is restarted
on the same port if it dies, and is stopped with the server (and dies with
it, see :mod:`crackershop.children.child`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from crackershop.children.child import ChildService, ChildUnavailable, Processes
from crackershop.children.probe import mongo_ping

log = Logger()

HOST = "127.0.0.1"


class EmbeddedUnavailable(ChildUnavailable):
    """The embedded database could not be found or started."""


NOT_INSTALLED = (
    "the embedded database is not installed: install crackershop[embedded] "
    "(the secantusdb package) or put secantusd-py on the PATH, or set MONGO_URI"
)


def carries_database() -> bool:
    """Whether this is a single-file build that carries SecantusDB (found,
    not imported: only the ``_database`` sub-command's process imports it)."""
    if not getattr(sys, "frozen", False):
        return False
    import importlib.util

    return importlib.util.find_spec("secantus") is not None


def find_secantusd() -> Optional[list[str]]:
    """The command that runs the embedded database: the single-file binary's
    own ``_database``, else ``secantusd-py`` beside this interpreter (a
    virtualenv), else on the PATH; None if there is none."""
    if carries_database():
        return [sys.executable, "_database"]
    beside = Path(sys.executable).parent / "secantusd-py"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("secantusd-py")
    return [found] if found else None


def uri_file(data_dir: Path) -> Path:
    return data_dir.with_name(data_dir.name + ".uri")


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now, for the database to listen on."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedMongo(ChildService):
    """Runs the embedded database and tells, through :meth:`whenReady`, the
    URI to connect to once it accepts connections. After a restart it listens
    on the same port, so the URI stays valid."""

    what = "the embedded database"
    role = "database"
    unavailable = EmbeddedUnavailable

    def __init__(
        self,
        reactor: Any,
        data_dir: str,
        executable: Optional[str] = None,
        port: int = 0,
        find: Callable[[], Optional[list[str]]] = find_secantusd,
        processes: Optional[Processes] = None,
        pick_port: Callable[[], int] = free_port,
        ping: Callable[..., Deferred[None]] = mongo_ping,
    ) -> None:
        super().__init__(reactor, processes)
        self.ping = ping
        self.data_dir = Path(data_dir)
        self.executable = executable
        self.port = port
        self.find = find
        self.pick_port = pick_port

    @property
    def address(self) -> Optional[str]:
        return f"mongodb://{HOST}:{self.port}" if self.port else None

    @property
    def uri(self) -> Optional[str]:
        return self.address if self.ready else None

    @property
    def pid_file(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + ".pid")

    @property
    def uri_file(self) -> Path:
        """Where the running database's URI is written, for ``crackershop seed``."""
        return uri_file(self.data_dir)

    def command(self) -> list[str]:
        program = [self.executable] if self.executable else self.find()
        if program is None:
            raise EmbeddedUnavailable(NOT_INSTALLED)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedUnavailable(
                f"cannot create the data directory {self.data_dir}: {e.strerror}"
            ) from None
        if not self.port:
            # chosen once: a restarted database listens where the pools connect
            self.port = self.pick_port()
        log.info("starting the embedded database in {path}", path=str(self.data_dir))
        # The same command line every time: readiness is a ping, whatever it logs.
        return [
            *program,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--storage-path",
            str(self.data_dir),
            # Without it an acknowledged write can be lost when the database
            # process is killed (it was seen losing placed orders): every
            # commit reaches the disk before the write is answered.
            "--sync-on-commit",
            "--log-level",
            "WARNING",
        ]

    def probe(self) -> Deferred[None]:
        return self.ping(self.reactor, HOST, self.port, self.probe_timeout)

    def became_ready(self) -> None:
        log.info("the embedded database is listening at {uri}", uri=self.uri)
        try:
            self.uri_file.write_text(f"{self.uri}\n")
        except OSError as e:
            log.warn("cannot write {path}: {error}", path=str(self.uri_file), error=e.strerror)

    def _fail(self, message: str) -> None:
        if not self._ready_once and self.child is None and "exited while starting" in message:
            message += f"; is another server using {self.data_dir}, or port {self.port}?"
        super()._fail(message)

    def stopped(self) -> None:
        with contextlib.suppress(OSError):
            self.uri_file.unlink()
