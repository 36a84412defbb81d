"""Helpers for tests that run real processes: free ports, deadlines, and the
crackershop and embedded-database processes themselves."""

from __future__ import annotations

import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import httpx

from crackershop.app.conformance import Conformance

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], Optional[T]], timeout: float = 30.0, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # the condition may raise until it holds
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: {last!r}")


def tool(name: str) -> str:
    """A console script of this environment (twistd, secantusd-py, ...)."""
    beside = BIN / name
    return str(beside) if beside.exists() else name


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "REDIS_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class Process:
    """A child process whose output goes to a log file; stopped by pid."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        self.signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._log.close()
        return code


class Secantus(Process):
    """A standalone embedded database on a port of our choosing."""

    def __init__(self, workdir: Path, port: Optional[int] = None, durable: bool = False) -> None:
        """``durable``: every commit reaches the disk before it is acknowledged
        (``--sync-on-commit``); without it a killed database loses the last
        acknowledged writes."""
        self.port = port or free_port()
        self.data = workdir / "secantus-data"
        self.data.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [
                tool("secantusd-py"),
                *(["--sync-on-commit"] if durable else []),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--storage-path",
                str(self.data),
            ],
            child_env({}),
            workdir,
            workdir / f"secantus-{self.port}.log",
        )
        wait_until(lambda: re.search(r"listening on", self.output()), 60, "secantus to listen")

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"


class Server(Process):
    """``twistd -n crackershop`` serving on a free port."""

    def __init__(
        self,
        workdir: Path,
        env: Optional[dict[str, Optional[str]]] = None,
        args: Optional[list[str]] = None,
        wait: bool = True,
        verify: Any = True,
        command: Optional[list[str]] = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        # what httpx checks an HTTPS server's certificate against
        self.verify = verify
        self.port = free_port()
        self.workdir = workdir
        settings = {
            "NODE_ENV": "development",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "JWT_SECRET": "integration-test-secret-0123456789abcdef",
            "BCRYPT_ROUNDS": "4",
            "DATA_DIR": str(workdir / "data" / "db"),
            "MAIL_OUTBOX": str(workdir / "outbox"),
            # tests of other features send more than a client's real limits
            "RATE_LIMIT_MAX_REQUESTS": "1000000",
            "RATE_LIMIT_WRITE_MAX": "1000000",
            "RATE_LIMIT_AUTH_MAX": "1000000",
            # every read reaches the database, so a test sees its own writes at
            # once; tests of the catalogue cache turn it on
            "CATALOGUE_CACHE_TTL": "0",
        }
        settings.update(env or {})
        # None removes a setting: the server's own default applies
        settings = {k: v for k, v in settings.items() if v is not None}
        self.settings = settings
        self.args = list(args or [])
        super().__init__(
            [*(command or [tool("twistd"), "-n", "--pidfile=", "crackershop"]), *(args or [])],
            child_env(settings),
            workdir,
            workdir / f"crackershop-{self.port}.log",
        )
        scheme = "https" if settings.get("TLS_CERT") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited:\n{self.output()}")
            return httpx.get(self.url + "/ready", timeout=2, verify=self.verify).status_code == 200

        def every_worker() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited:\n{self.output()}")
            status = self.status()
            if status is None:
                return False
            workers = status.get("workers", [])
            return sum(1 for w in workers if w.get("state") == "ready") >= self.workers

        try:
            wait_until(ready, timeout, "the server to be ready")
            if self.workers > 1:
                # /ready answers once one worker is up; a test of a cluster wants them all.
                wait_until(every_worker, timeout, "every worker to be ready")
        except AssertionError:
            self.stop()
            raise AssertionError(f"server not ready:\n{self.output()[-4000:]}") from None

    def status(self) -> Optional[dict[str, Any]]:
        """What ``crackershop status --json`` shows, read from the server's
        control socket (so a bad setting in ``.env`` that a command would
        refuse does not hide it); None if it does not answer."""
        from crackershop.ops.control import ControlError, NoServer, call

        run_dir = Path(self.settings.get("RUN_DIR", "run"))
        try:
            status: dict[str, Any] = call(str(self.workdir / run_dir), {"cmd": "status"}, 30)
        except (NoServer, ControlError, OSError, ValueError):
            return None
        return status

    def wait_status(
        self, check: Callable[[dict[str, Any]], Any], timeout: float = 60.0, what: str = ""
    ) -> dict[str, Any]:
        """Poll ``crackershop status --json`` until ``check(status)`` holds; the status."""

        def holds() -> Optional[dict[str, Any]]:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited:\n{self.output()[-3000:]}")
            status = self.status()
            return status if status is not None and check(status) else None

        return wait_until(holds, timeout, what or "the server's status")

    def ready_ids(self, status: dict[str, Any]) -> set[int]:
        """The ids of the workers serving (ready) in ``status``."""
        return {w["id"] for w in status.get("workers", []) if w.get("state") == "ready"}

    def wait_rolled(self, old: set[int], timeout: float = 60.0) -> dict[str, Any]:
        """Wait until as many workers as asked for serve and none is one of ``old``
        (a rolling restart, or a reload, is done); the status."""

        def rolled(status: dict[str, Any]) -> bool:
            rows = status.get("workers", [])
            ready = self.ready_ids(status)
            return (
                len(ready) >= max(self.workers, 1)
                and not ready & old
                and all(w.get("state") == "ready" for w in rows)
            )

        return self.wait_status(rolled, timeout, "every worker to be replaced")

    def wait_shared_limits(self, timeout: float = 30.0) -> None:
        """Wait until every worker checks its rate limits in the shared Redis
        (its /ready says ``redis: ok``), not in its own fallback share, which a
        worker starved of CPU at start may take for a while."""
        want = max(self.workers, 1)

        def shared() -> bool:
            seen: dict[str, str] = {}
            for _ in range(4 * want):
                r = httpx.get(
                    self.url + "/ready",
                    headers={"Connection": "close"},
                    timeout=5,
                    verify=self.verify,
                )
                seen[r.headers.get("x-worker", "0")] = r.json().get("checks", {}).get("redis")
            return len(seen) >= want and all(state == "ok" for state in seen.values())

        wait_until(shared, timeout, "every worker's limits in the shared Redis")

    def pids(self) -> dict[str, int]:
        """Every process of this server, from its status: server, worker-N, and its
        children by name (database, redis)."""
        status = self.status()
        assert status is not None, self.output()[-3000:]
        found = {"server": int(status["pid"])}
        for worker in status.get("workers", []):
            if worker.get("pid") and worker["pid"] != status["pid"]:
                found[f"worker-{worker['id']}"] = int(worker["pid"])
        for child in status.get("children", []):
            if child.get("pid"):
                found[child["name"]] = int(child["pid"])
        return found

    @property
    def workers(self) -> int:
        """How many workers the server was asked for (0: a single process)."""
        args = self.args
        value = self.settings.get("WORKERS", "0")
        for i, arg in enumerate(args):
            if arg == "--workers" and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith("--workers="):
                value = arg.split("=", 1)[1]
        if value == "auto":
            return len(os.sched_getaffinity(0))
        return int(value)

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTP client of this server that checks every answer against
        the route's declared response (``conform=False`` for one that
        does not: a test of what the edge does to any request)."""
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("verify", self.verify)
        if kwargs.pop("conform", True):
            kwargs.setdefault("event_hooks", {"response": [conform]})
        return httpx.Client(base_url=self.url, **kwargs)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1)
def conformance() -> Conformance:
    from crackershop.app.apidoc import route_table

    return Conformance(route_table())


def conform(response: httpx.Response) -> None:
    """The answer is what its route declares (crackershop.app.conformance)."""
    response.read()
    request = response.request
    conformance().check(
        request.method,
        request.url.path,
        response.status_code,
        response.headers.get("content-type"),
        response.content,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register(client: httpx.Client, email: str, password: str = "password123") -> dict[str, Any]:
    """Register a customer through the API; the reply's body."""
    r = client.post(
        "/api/v1/auth/register", json={"name": "Test User", "email": email, "password": password}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_admin(server: Server, email: str, password: str) -> str:
    """An admin account made by `crackershop seed` on the server's database; its token."""
    settings = {"DATA_DIR": str(server.workdir / "data" / "db"), "BCRYPT_ROUNDS": "4"}
    settings.update(server.settings)
    done = subprocess.run(
        [
            tool("crackershop"),
            "seed",
            "--force",
            "--admin-email",
            email,
            "--admin-password",
            password,
        ],
        env=child_env(settings),
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with server.client() as c:
        r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        token: str = r.json()["token"]
        return token
