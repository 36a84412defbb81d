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
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from twisted.logger import Logger

from crackershop.child import ChildService, ChildUnavailable

log = Logger()

LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")


class EmbeddedUnavailable(ChildUnavailable):
    """The embedded database could not be found or started."""


def find_secantusd() -> Optional[str]:
    """``secantusd-py`` beside this interpreter (a virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / "secantusd-py"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("secantusd-py")


def uri_file(data_dir: Path) -> Path:
    return data_dir.with_name(data_dir.name + ".uri")


class EmbeddedMongo(ChildService):
    """Runs the embedded database and tells, through :meth:`whenReady`, the
    URI to connect to once it accepts connections. After a restart it listens
    on the same port, so the URI stays valid."""

    what = "the embedded database"
    unavailable = EmbeddedUnavailable

    def __init__(
        self,
        reactor: Any,
        data_dir: str,
        executable: Optional[str] = None,
        port: int = 0,
        find: Callable[[], Optional[str]] = find_secantusd,
    ) -> None:
        super().__init__(reactor)
        self.data_dir = Path(data_dir)
        self.executable = executable
        self.port = port
        self.find = find

    @property
    def uri(self) -> Optional[str]:
        return self.address

    @property
    def uri_file(self) -> Path:
        """Where the running database's URI is written, for ``crackershop seed``."""
        return uri_file(self.data_dir)

    def command(self) -> list[str]:
        executable = self.executable or self.find()
        if executable is None:
            raise EmbeddedUnavailable(
                "the embedded database is not installed: install crackershop[embedded] "
                "(the secantusdb package) or put secantusd-py on the PATH, or set MONGO_URI"
            )
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedUnavailable(
                f"cannot create the data directory {self.data_dir}: {e.strerror}"
            ) from None
        log.info("starting the embedded database in {path}", path=str(self.data_dir))
        return [
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

    def ready_address(self, line: bytes) -> Optional[str]:
        match = LISTENING.search(line)
        if not match:
            return None
        host, self.port = match.group(1).decode(), int(match.group(2))
        return f"mongodb://{host}:{self.port}"

    def became_ready(self) -> None:
        log.info("the embedded database is listening at {uri}", uri=self.uri)
        try:
            self.uri_file.write_text(f"{self.uri}\n")
        except OSError as e:
            log.warn("cannot write {path}: {error}", path=str(self.uri_file), error=e.strerror)

    def _fail(self, message: str) -> None:
        if not self._ready_once and self.child is None and "exited while starting" in message:
            message += f"; is another server using {self.data_dir}?"
        super()._fail(message)

    def stopped(self) -> None:
        with contextlib.suppress(OSError):
            self.uri_file.unlink()
