"""The single-file binary (``scripts/build-binary`` -> ``dist/crackershop``):
every command the installed package has, from the frozen build.

Runs when ``CRACKERSHOP_BINARY`` names a binary or ``dist/crackershop``
exists (CI builds it first, see .ci/run); skipped otherwise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import httpx
import psutil
import pytest

from tests.support import ROOT, Secantus, Server, child_env, tool, wait_until

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
    # (its family: the master, both workers and the private Redis)
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


def test_embedded_database_from_the_path(tmp_path: Path) -> None:
    """Without MONGO_URI the binary runs secantusd-py found on the PATH, and says so."""
    path = f"{Path(tool('secantusd-py')).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    server = Server(tmp_path, env={"PATH": path}, command=[str(BINARY), "serve"])
    try:
        assert "starting the embedded database" in server.output()
        assert httpx.get(server.url + "/api/v1/products", timeout=10).status_code == 200
    finally:
        assert server.stop() == 0, server.output()[-3000:]


def test_no_database_fails_clearly(tmp_path: Path) -> None:
    """Without MONGO_URI and without secantusd-py the binary exits 1 saying what to do."""
    done = subprocess.run(
        [str(BINARY), "serve", "--workers=2", "--port=0", "--host=127.0.0.1"],
        env=child_env({"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "db")}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    said = done.stdout + done.stderr  # twistd's log takes stderr over
    assert done.returncode == 1, said
    assert "secantusd-py on the PATH, or set MONGO_URI" in said
