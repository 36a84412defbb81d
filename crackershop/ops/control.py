"""The control socket: a UNIX socket in RUN_DIR through which ``crackershop
status|stop|restart|scale`` talk to a running server.

The protocol is one JSON object per line each way: a request
``{"cmd": "status"}`` (``restart`` takes ``worker``, ``scale`` takes
``count``) is answered by ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. The socket is created with mode 0600 (under
a umask, so it is never briefly open to others): only the user who started
the server, and root, may control it.

The server side (:class:`ControlFactory`) is given a handler with the
methods ``status()``, ``stop()``, ``restart(worker)`` and ``scale(count)``;
the client side (:func:`call`) is a plain blocking socket, for the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import maybeDeferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

log = Logger()

SOCKET_NAME = "crackershop.sock"
MAX_LINE = 64 * 1024


class ControlError(Exception):
    """A control request the server refuses; its text goes back to the client."""


class NoServer(Exception):
    """No server answers on the control socket."""


def socket_path(run_dir: str) -> Path:
    return Path(run_dir) / SOCKET_NAME


# -- server side


class ControlProtocol(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def lineReceived(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            self._answer({"ok": False, "error": "a request is one JSON object per line"})
            return
        d = maybeDeferred(self._dispatch, request)
        d.addCallbacks(lambda result: self._answer({"ok": True, "result": result}), self._refused)

    def _dispatch(self, request: dict[str, Any]) -> Any:
        command = request.get("cmd")
        if command == "status":
            return self.handler.status()
        if command == "stop":
            return self.handler.stop()
        if command == "restart":
            worker = request.get("worker")
            if worker is not None and (not isinstance(worker, int) or isinstance(worker, bool)):
                raise ControlError("worker must be a worker id (an integer)")
            return self.handler.restart(worker)
        if command == "scale":
            count = request.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ControlError("count must be an integer of at least 1")
            return self.handler.scale(count)
        raise ControlError(f"unknown command {command!r}")

    def _refused(self, failure: Failure) -> None:
        if failure.check(ControlError):
            message = str(failure.value)
        else:
            log.failure("control request failed", failure)
            message = f"the server could not do that: {failure.value}"
        self._answer({"ok": False, "error": message})

    def _answer(self, message: dict[str, Any]) -> None:
        if self.transport is not None:
            self.sendLine(json.dumps(message, default=str).encode("utf-8"))

    def lineLengthExceeded(self, line: bytes) -> None:
        self._answer({"ok": False, "error": "request too long"})
        if self.transport is not None:
            self.transport.loseConnection()


class ControlFactory(Factory):
    noisy = False

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def buildProtocol(self, addr: Any) -> ControlProtocol:
        return ControlProtocol(self.handler)


def listen(reactor: Any, run_dir: str, handler: Any) -> Any:
    """Listen on RUN_DIR/crackershop.sock, mode 0600 from the start. A stale
    socket left by a killed server is replaced (twisted's pid lock file)."""
    directory = Path(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = socket_path(run_dir)
    old = os.umask(0o177)
    try:
        return reactor.listenUNIX(str(path), ControlFactory(handler), mode=0o600, wantPID=True)
    finally:
        os.umask(old)


class ControlService(Service):
    """The control socket while the server runs; ``unavailable(reason)`` is
    told when it cannot be opened."""

    def __init__(
        self, reactor: Any, run_dir: str, handler: Any, unavailable: Callable[[str], None]
    ) -> None:
        self.reactor = reactor
        self.run_dir = run_dir
        self.handler = handler
        self.unavailable = unavailable
        self.port: Any = None

    def startService(self) -> None:
        super().startService()
        try:
            self.port = listen(self.reactor, self.run_dir, self.handler)
        except Exception as e:
            self.unavailable(f"cannot open the control socket in {self.run_dir}: {e}")

    def stopService(self) -> Any:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None


# -- client side


def call(run_dir: str, request: dict[str, Any], timeout: float = 10.0) -> Any:
    """Send one request and return its result; raises :class:`NoServer` when
    nothing listens and :class:`ControlError` when the server refuses."""
    path = socket_path(run_dir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise NoServer(f"no crackershop server is running (no control socket {path})") from None
        except ConnectionRefusedError:
            raise NoServer(
                f"no crackershop server is running (nothing listens on {path})"
            ) from None
        except PermissionError:
            raise NoServer(f"permission denied on the control socket {path}") from None
        sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                raise ControlError(f"the server did not answer within {timeout:.0f}s") from None
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if not data:
        raise ControlError("the server closed the control connection without an answer")
    answer = json.loads(data)
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "refused")))
    return answer.get("result")


def wait_gone(run_dir: str, pid: Optional[int], timeout: float) -> bool:
    """Whether the server (its pid, else its socket) went away within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None:
            if not _alive(pid):
                return True
        elif not socket_path(run_dir).exists():
            return True
        time.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(Exception):
        import psutil

        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    return True


# -- presenting status


COLUMNS = (
    ("id", "id"),
    ("pid", "pid"),
    ("state", "state"),
    ("uptime", "uptime"),
    ("restarts", "restarts"),
    ("reason", "last restart"),
    ("cpu", "cpu"),
    ("rss", "mem"),
    ("served", "requests"),
    ("connections", "conns"),
)


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def size(value: Optional[float]) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return "-"  # pragma: no cover


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    if key == "uptime":
        return duration(value)
    if key == "rss":
        return size(value)
    if key == "cpu":
        return "-" if value is None else f"{value:.1f}%"
    if value is None or value == "":
        return "-"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A pm2-like table of workers, boxed with plain characters."""
    headers = [title for _, title in COLUMNS]
    cells = [[_cell(key, row) for key, _ in COLUMNS] for row in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    out = [rule, line(headers), rule, *(line(c) for c in cells), rule]
    return "\n".join(out)


def render_status(status: dict[str, Any]) -> str:
    head = (
        f"crackershop {status.get('version', '?')} ({status.get('environment', '?')}), "
        f"master pid {status.get('pid')}, listening on {status.get('host')}:{status.get('port')}, "
        f"mode {status.get('mode')}"
    )
    lines = [
        head,
        f"database: {status.get('database') or '-'}    redis: {status.get('redis') or '-'}",
        table(list(status.get("workers", []))),
    ]
    children = [_child(c) for c in status.get("children", [])]
    if children:
        lines.append("children: " + ", ".join(children))
    return "\n".join(lines)


def _child(child: dict[str, Any]) -> str:
    """One child service, e.g. ``database pid 1234 ready, 1 restart``."""
    restarts = child.get("restarts") or 0
    text = f"{child.get('name')} pid {child.get('pid') or '-'} {child.get('state')}"
    if restarts:
        text += f", {restarts} restart{'s' if restarts != 1 else ''}"
    return text


class ProcessFigures:
    """CPU % (since the previous look, or over the process's life the first
    time) and resident memory of processes, by pid, with psutil."""

    def __init__(self) -> None:
        self._seen: dict[int, Any] = {}

    def __call__(self, pid: Optional[int]) -> dict[str, Any]:
        if pid is None:
            return {}
        import psutil

        try:
            process = self._seen.get(pid)
            if process is None:
                process = self._seen[pid] = psutil.Process(pid)
                times = process.cpu_times()
                life = max(time.time() - process.create_time(), 1e-3)
                cpu = 100.0 * (times.user + times.system) / life
                process.cpu_percent(None)
            else:
                cpu = process.cpu_percent(None)
            return {"cpu": round(cpu, 1), "rss": int(process.memory_info().rss)}
        except (psutil.Error, OSError):
            self._seen.pop(pid, None)
            return {}

    def forget(self, live: set[int]) -> None:
        for pid in list(self._seen):
            if pid not in live:
                del self._seen[pid]


def server_summary(config: Any, mode: str, host: str, port: int, redis: str) -> dict[str, Any]:
    """The part of ``status`` that describes the server, secrets masked."""
    from crackershop import __version__
    from crackershop.config import mask_uri

    return {
        "pid": os.getpid(),
        "version": __version__,
        "environment": config.environment,
        "mode": mode,
        "host": host,
        "port": port,
        "database": mask_uri(config.mongo_uri) if config.mongo_uri else "",
        "redis": mask_uri(redis) if redis else "",
    }
