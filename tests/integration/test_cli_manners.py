"""The manners of the commands: quiet on a closed pipe, honest ``config``
output, a clean ^C, MAX_MEMORY checked at start, tokens that survive a
development restart, and scripts/install naming a Python that is too old."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import httpx

from tests.support import ROOT, Secantus, Server, child_env, register, tool, unique


def closed_pipe(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    """Run a command whose standard output is a pipe nobody reads any more."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=child_env(env),
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    return done


def test_config_is_quiet_on_a_closed_pipe_and_honest(tmp_path: Path) -> None:
    """`config | head -1` leaves no traceback; WORKERS=auto shows auto and unset
    secrets show "not set"."""
    done = closed_pipe([tool("crackershop"), "config"], tmp_path)
    assert done.stderr == b"" and done.returncode == 141
    shown = subprocess.run(
        [tool("crackershop"), "config"],
        cwd=tmp_path,
        env=child_env({"WORKERS": "auto"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = {
        name: value.strip() for name, _, value in (x.partition(" ") for x in shown.splitlines())
    }
    assert rows["WORKERS"] == "auto"
    assert rows["MONGO_URI"] == "not set" and rows["SMTP_PASSWORD"] == "not set"
    assert rows["JWT_SECRET"].startswith("not set (development: the secret kept in ")
    assert "********" not in shown


def test_tokens_survive_a_development_restart(tmp_path: Path, secantus: Secantus) -> None:
    """Without JWT_SECRET, development keeps one secret (0600) in DATA_DIR: a token
    from before a restart still works after it; logs read the single process's file
    and stop quietly on a closed pipe."""
    env = {"MONGO_URI": secantus.uri + "/devsecret", "JWT_SECRET": ""}
    server = Server(tmp_path, env=env)
    try:
        with server.client() as c:
            token = register(c, unique("dev") + "@example.com")["token"]
        assert "signing tokens with the development secret kept in" in server.output()
    finally:
        assert server.stop() == 0, server.output()[-3000:]
    secret = tmp_path / "data" / "db" / "jwt-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    server = Server(tmp_path, env=env)
    try:
        me = httpx.get(server.url + "/api/v1/auth/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        done = closed_pipe([tool("crackershop"), "logs", "-n", "50"], tmp_path)
        assert done.stderr == b"" and done.returncode == 141
    finally:
        assert server.stop() == 0, server.output()[-3000:]


def test_ctrl_c_of_a_cluster_logs_no_false_error(tmp_path: Path, secantus: Secantus) -> None:
    """^C reaches the master, its workers and its embedded database at once: the
    server exits 0 and logs no error (no 'exited unexpectedly')."""
    server = Server(tmp_path, args=["--workers", "2"])
    try:
        status = server.status()
        assert status is not None
        assert {c["name"]: c["state"] for c in status["children"]} == {"database": "ready"}
        os.killpg(server.pid, signal.SIGINT)  # what a terminal's ^C does
        assert server.proc.wait(60) == 0
    finally:
        server.stop()
    output = server.output()
    assert "master stopped" in output
    assert "unexpectedly" not in output and "#error]" not in output, output[-3000:]


def test_max_memory_below_an_idle_worker_is_refused(tmp_path: Path, secantus: Secantus) -> None:
    """MAX_MEMORY=10mb stops the cluster at start with one line naming both sizes,
    instead of recycling workers for ever."""
    server = Server(
        tmp_path,
        env={"MONGO_URI": secantus.uri + "/maxmem", "MAX_MEMORY": "10mb"},
        args=["--workers", "2"],
        wait=False,
    )
    assert server.proc.wait(90) == 1
    server.stop()
    output = server.output()
    lines = [x for x in output.splitlines() if "MAX_MEMORY (10 MB)" in x]
    assert len(lines) == 1 and "is below what a worker needs when idle" in lines[0], output
    assert "#critical]" in lines[0], output
    assert "recycling" not in output


def test_install_names_a_python_that_is_too_old(tmp_path: Path) -> None:
    """scripts/install with Python 3.8 exits 1 with one line saying what is needed."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install", tmp_path / "scripts" / "install")
    old = tmp_path / "python3.8"
    old.write_text("#!/bin/sh\necho 3.8\n")
    old.chmod(0o755)
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "install")],
        env=child_env({"PYTHON": str(old)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and not (tmp_path / ".venv").exists()
    assert done.stderr.splitlines() == [
        f"scripts/install: crackershop needs Python 3.9 or newer, {old} is 3.8 "
        "(set PYTHON=python3.11)"
    ]
