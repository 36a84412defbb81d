"""The single-file binary (``scripts/build-binary`` -> ``dist/crackershop``):
every command the installed package has, from the frozen build, and on its
own on a machine with nothing else.

Runs when ``CRACKERSHOP_BINARY`` names a binary or ``dist/crackershop``
exists (CI builds it first, see .ci/run); skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import httpx
import psutil
import pytest

from tests.support import ROOT, Process, Secantus, Server, child_env, free_port, wait_until

BINARY = Path(os.environ.get("CRACKERSHOP_BINARY") or ROOT / "dist" / "crackershop")

pytestmark = pytest.mark.skipif(
    not BINARY.is_file(),
    reason=f"no binary at {BINARY}: run scripts/build-binary (or set CRACKERSHOP_BINARY)",
)


def run(
    *args: str, env: Optional[dict[str, str]] = None, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BINARY), *args],
        env=child_env(env or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def binary_workers(server: Server) -> dict[int, int]:
    """Live worker processes under the binary: pid -> worker id. The binary's
    pid is the one-file bootloader; the master is its child."""
    found = {}
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "_worker" in cmd and child.status() != psutil.STATUS_ZOMBIE:
            found[child.pid] = int(cmd[cmd.index("--worker-id") + 1])
    return found


def cluster_status(server: Server) -> Optional[dict[str, Any]]:
    """Hook for the ops commands: ``crackershop status --json`` where the
    binary has that sub-command; None where it has not (the smoke test then
    counts the worker processes instead)."""
    if "status" not in run("--help").stdout.split():
        return None
    done = run("status", "--json", env=server.settings, cwd=server.workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


@pytest.fixture
def database(tmp_path: Path, secantus: Secantus) -> str:
    """A fresh test database, seeded by the binary's own ``seed`` command."""
    uri = f"{secantus.uri}/binary{tmp_path.name[-8:]}"
    done = run("seed", "--admin-password", "admin-password-1", env={"MONGO_URI": uri})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seeded 10 categories and 150 products" in done.stdout
    return uri


@pytest.fixture
def served(tmp_path: Path, database: str) -> Iterator[Server]:
    """``crackershop serve --workers=2`` from the binary on the seeded database."""
    server = Server(
        tmp_path,
        env={"MONGO_URI": database},
        command=[str(BINARY), "serve"],
        args=["--workers=2"],
    )
    server.wait_status(lambda s: len(server.ready_ids(s)) == 2, 60, "both workers ready")
    yield server
    server.stop()


def test_version_and_config() -> None:
    """The binary answers --version and prints its effective configuration."""
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("crackershop ")
    config = run("config", env={"MONGO_URI": "mongodb://127.0.0.1:1/x", "PORT": "6123"})
    assert config.returncode == 0, config.stderr
    assert "6123" in config.stdout and "mongodb://127.0.0.1:1/x" in config.stdout


def test_serve_two_workers_then_sigterm(served: Server) -> None:
    """serve --workers=2: /health, a product list and the price lists (the
    frozen reportlab and XlsxWriter) answer, both workers serve, and SIGTERM
    to the binary stops everything with exit 0."""
    assert httpx.get(served.url + "/health", timeout=10).json()["success"] is True
    products = httpx.get(served.url + "/api/v1/products?limit=5", timeout=10).json()
    assert products["success"] is True and products["total"] == 150
    for kind, magic in (("pdf", b"%PDF-"), ("excel", b"PK")):
        sheet = httpx.get(f"{served.url}/api/v1/products/download/{kind}", timeout=30)
        assert sheet.status_code == 200 and sheet.content.startswith(magic), sheet.text[:500]
    status = cluster_status(served)
    if status is None:
        assert sorted(wait_until(lambda: binary_workers(served), 10).values()) == [1, 2]
    else:
        assert [w["state"] for w in status["workers"]] == ["ready", "ready"], status
    seen: set[str] = set()

    def both() -> bool:
        r = httpx.get(served.url + "/health", headers={"connection": "close"}, timeout=10)
        seen.add(r.headers["x-worker"])
        return len(seen) == 2

    wait_until(both, 30, "both workers to answer")
    # the binary's pid is the one-file bootloader: it forwards SIGTERM to the
    # master it unpacked and exits with the master's code
    # (its family: the master and both workers)
    family = [child.pid for child in psutil.Process(served.pid).children(recursive=True)]
    served.signal(signal.SIGTERM)
    assert served.proc.wait(60) == 0, served.output()[-3000:]
    assert "master stopped" in served.output()
    wait_until(lambda: not [p for p in family if psutil.pid_exists(p)], 10, "all processes gone")


def test_twistd_entry(tmp_path: Path, database: str) -> None:
    """``crackershop twistd -n crackershop`` serves like ``twistd -n crackershop``."""
    server = Server(
        tmp_path,
        env={"MONGO_URI": database},
        command=[str(BINARY), "twistd", "-n", "--pidfile=", "crackershop"],
    )
    try:
        assert httpx.get(server.url + "/api/v1/categories", timeout=10).status_code == 200
    finally:
        assert server.stop() == 0, server.output()[-3000:]


def test_daemon_mode_refused(tmp_path: Path) -> None:
    """twistd daemon mode (no -n) is refused by the frozen binary with a clear
    message, before anything starts."""
    done = subprocess.run(
        [str(BINARY), "twistd", "--pidfile=", "crackershop", "--port", "1"],
        env=child_env({"MONGO_URI": "mongodb://127.0.0.1:1/x"}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "cannot run as a daemon" in done.stderr and "-n" in done.stderr
    assert not (tmp_path / "twistd.pid").exists()


def bare_env(scratch: Path, **settings: str) -> dict[str, str]:
    """What a new user's shell gives the binary on a machine with nothing
    else: a PATH of one empty folder (CI has redis-server and Python in
    /usr/bin, which would hide a missing piece), and nothing of this
    checkout's virtual environment."""
    empty = scratch / "empty-bin"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty), "HOME": str(scratch), "LANG": "C.UTF-8", **settings}


def bare(
    binary: Path, *args: str, scratch: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], env=env, cwd=scratch, capture_output=True, text=True, timeout=120
    )


def test_runs_alone_with_an_empty_path(tmp_path: Path) -> None:
    """Copied into an empty folder and run with an empty PATH (no Python, no
    MongoDB, no Redis): serve --workers=2 starts its own embedded database
    (data in ./data) and shares its rate limits between the workers; seed
    fills that database; the products list, an order is placed, status
    shows both workers and the database, stop stops it all; served again,
    the order is still there."""
    scratch = tmp_path / "fresh"
    scratch.mkdir()
    binary = scratch / "crackershop"
    shutil.copy(BINARY, binary)
    port = free_port()
    env = bare_env(scratch, HOST="127.0.0.1", PORT=str(port))
    url = f"http://127.0.0.1:{port}"

    def serve() -> Process:
        server = Process(
            [str(binary), "serve", "--workers=2"], env, scratch, scratch / f"serve-{port}.log"
        )

        def ready() -> bool:
            if server.proc.poll() is not None:
                raise AssertionError(f"the binary exited:\n{server.output()[-3000:]}")
            status = bare(binary, "status", "--json", scratch=scratch, env=env)
            return status.returncode == 0 and [
                w["state"] for w in json.loads(status.stdout)["workers"]
            ] == ["ready", "ready"]

        wait_until(ready, 120, "both workers ready")
        return server

    server = serve()
    family: list[int] = []
    try:
        seeded = bare(
            binary, "seed", "--admin-password", "admin-password-1", scratch=scratch, env=env
        )
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        assert "seeded 10 categories and 150 products" in seeded.stdout
        products = httpx.get(url + "/api/v1/products?limit=5", timeout=10).json()
        assert products["success"] is True and products["total"] == 150
        item = products["data"][0]
        customer = {"name": "Asha", "email": "asha@shop.test", "password": "password123"}
        token = httpx.post(url + "/api/v1/auth/register", json=customer, timeout=30).json()["token"]
        order = httpx.post(
            url + "/api/v1/orders",
            json={
                "orderItems": [{"product": item["_id"], "qty": 10}],
                "shippingAddress": {
                    "address": "12 Car Street",
                    "city": "Sivakasi",
                    "postalCode": "626123",
                    "country": "India",
                },
                "paymentMethod": "COD",
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert order.status_code == 201, order.text
        status = bare(binary, "status", "--json", scratch=scratch, env=env)
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert shown["mode"] == "cluster" and shown["redis"] == ""
        assert [c["name"] for c in shown["children"]] == ["database"]
        assert "(embedded)" in shown["database"]
        family = [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        commands = [" ".join(psutil.Process(p).cmdline()) for p in family]
        assert any("_database" in c for c in commands), commands
        assert not any("redis" in c or "python" in c.split()[0] for c in commands), commands
        stopped = bare(binary, "stop", scratch=scratch, env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert server.proc.wait(60) == 0, server.output()[-3000:]
        wait_until(lambda: not [p for p in family if psutil.pid_exists(p)], 30, "all gone")
    finally:
        server.stop()
    assert (scratch / "data" / "db").is_dir()
    again = serve()
    try:
        mine = httpx.get(
            url + "/api/v1/orders/myorders",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert mine.status_code == 200 and len(mine.json()["data"]) == 1, mine.text
    finally:
        assert again.stop() == 0, again.output()[-3000:]


@pytest.mark.parametrize("problem", ["port", "data"])
def test_a_start_failure_is_said_once(tmp_path: Path, problem: str) -> None:
    """A server that cannot start (its port taken, a data folder it cannot
    make) exits 1 saying why on one line, once, with no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1] if problem == "port" else free_port()
        (tmp_path / "not-a-folder").write_text("")
        settings = {"HOST": "127.0.0.1", "PORT": str(port)}
        if problem == "data":
            settings["DATA_DIR"] = str(tmp_path / "not-a-folder" / "db")
        done = bare(
            BINARY, "serve", "--workers=2", scratch=tmp_path, env=bare_env(tmp_path, **settings)
        )
    said = done.stdout + done.stderr
    reason = "cannot listen on" if problem == "port" else "cannot create the data directory"
    assert done.returncode == 1, said
    assert len([line for line in said.splitlines() if reason in line]) == 1, said
    assert "Traceback" not in said
