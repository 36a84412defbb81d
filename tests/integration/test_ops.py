"""Operating a real running server through its control socket and log:
``crackershop status|stop|restart|scale|logs`` against ``twistd -n crackershop``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Secantus, Server, child_env, tool, wait_until


def cli(server: Server, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed console script, run in the server's directory (./run, ./logs)."""
    return subprocess.run(
        [tool("crackershop"), *args],
        cwd=server.workdir,
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status(server: Server) -> dict[str, Any]:
    done = cli(server, "status", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def ready_ids(server: Server) -> list[int]:
    return sorted(w["id"] for w in status(server)["workers"] if w["state"] == "ready")


def test_status_restart_scale_logs_and_stop_on_a_two_worker_cluster(
    tmp_path: Path, secantus: Secantus
) -> None:
    """status shows both workers with sane figures and 'crash' after kill -9; restart,
    scale, logs -n/--worker work; stop exits 0 and the master is gone."""
    server = Server(tmp_path, env={"MONGO_URI": secantus.uri + "/ops"}, args=["--workers", "2"])
    try:
        wait_until(lambda: ready_ids(server) == [1, 2], 60, "two ready workers")
        sock = tmp_path / "run" / "crackershop.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert sock.stat().st_uid == os.getuid()

        def served() -> dict[int, int]:
            return {w["id"]: w.get("served", 0) for w in status(server)["workers"]}

        # the readiness probes were served too: count from a figure that has
        # held across more than one heartbeat (1 s)
        samples: list[tuple[float, dict[int, int]]] = []

        def settled() -> bool:
            samples.append((time.monotonic(), served()))
            first = next(t for t, v in samples if v == samples[-1][1])
            return samples[-1][0] - first > 1.5

        wait_until(settled, 20, "settled heartbeat counts")
        before = samples[-1][1]
        seen: dict[str, int] = {}
        for n in range(40):
            r = httpx.get(
                server.url + "/health", headers={"connection": "close", "x-request-id": f"t-{n}"}
            )
            assert r.headers["x-request-id"] == f"t-{n}"
            seen[r.headers["x-worker"]] = seen.get(r.headers["x-worker"], 0) + 1
        assert set(seen) == {"1", "2"}

        expected = {1: before[1] + seen["1"], 2: before[2] + seen["2"]}
        wait_until(lambda: served() == expected, 10, "heartbeat counts")
        st = status(server)
        assert st["pid"] == server.pid and st["port"] == server.port
        assert st["database"].startswith("mongodb://127.0.0.1:")
        for w in st["workers"]:
            assert w["state"] == "ready" and w["restarts"] == 0 and w["reason"] is None
            assert w["pid"] > 0 and w["rss"] > 10 * 2**20 and 0 <= w["cpu"] <= 200
            assert w["uptime"] > 0 and w["connections"] >= 0

        table = cli(server, "status")
        assert table.returncode == 0
        assert table.stdout.count("| ready ") == 2 and f"master pid {server.pid}" in table.stdout

        victim = next(w for w in st["workers"] if w["id"] == 1)
        os.kill(victim["pid"], signal.SIGKILL)
        wait_until(lambda: ready_ids(server) == [2, 3], 60, "worker 1 replaced")
        row = next(w for w in status(server)["workers"] if w["id"] == 3)
        assert (row["slot"], row["restarts"], row["reason"]) == (1, 1, "crash")
        assert "crash" in cli(server, "status").stdout

        done = cli(server, "restart", "--worker", "2")
        assert done.returncode == 0, done.stderr
        assert "replaced workers 2" in done.stdout
        row = next(w for w in status(server)["workers"] if w["id"] == 4)
        assert row["reason"] == "rolling restart"
        missing = cli(server, "restart", "--worker", "99")
        assert missing.returncode == 1 and "no worker 99" in missing.stderr

        done = cli(server, "scale", "3")
        assert done.returncode == 0 and "from 2 to 3" in done.stdout
        wait_until(lambda: len(ready_ids(server)) == 3, 60, "three workers")
        done = cli(server, "scale", "2")
        assert done.returncode == 0 and "from 3 to 2" in done.stdout
        wait_until(lambda: len(status(server)["workers"]) == 2, 30, "back to two")

        logs = cli(server, "logs", "-n", "5", "--worker", "2", "--json")
        events = [json.loads(line) for line in logs.stdout.splitlines()]
        assert len(events) == 5 and {e["worker"] for e in events} == {2}
        requests = cli(server, "logs", "-n", "1000")
        lines = [line for line in requests.stdout.splitlines() if "GET /health 200" in line]
        assert len(lines) == 40
        assert {line.split()[2] for line in lines} == {"worker-1", "worker-2"}
        warn = cli(server, "logs", "-n", "50", "--level", "error")
        assert "died (killed by SIGKILL)" in warn.stdout and " info " not in warn.stdout
        raw = cli(server, "logs", "-n", "1000", "--json").stdout
        ids = {json.loads(x).get("request_id") for x in raw.splitlines()}
        assert {f"t-{n}" for n in range(40)} <= ids

        done = cli(server, "stop")
        assert done.returncode == 0, done.stderr
        assert "stopped" in done.stdout
        assert server.proc.wait(10) == 0
        assert not sock.exists()
        gone = cli(server, "status")
        assert gone.returncode == 1
        assert gone.stderr.strip().count("\n") == 0 and "no crackershop server" in gone.stderr
    finally:
        server.stop()


def test_single_process_status_and_stop(tmp_path: Path, secantus: Secantus) -> None:
    """--workers=0 also answers status (itself as the one worker), restart (in place)
    and stop; scale is refused."""
    server = Server(tmp_path, env={"MONGO_URI": secantus.uri + "/ops1"}, args=["--workers", "0"])
    try:
        wait_until(lambda: cli(server, "status").returncode == 0, 30, "control socket")
        for _ in range(3):
            httpx.get(server.url + "/health")
        st = status(server)
        assert st["mode"] == "single process" and st["pid"] == server.pid
        [me] = st["workers"]
        assert me["pid"] == server.pid and me["served"] >= 3 and me["state"] == "ready"
        done = cli(server, "restart")
        assert done.returncode == 0 and "restarted in place" in done.stdout, done.stderr
        refused = cli(server, "scale", "2")
        assert refused.returncode == 1 and "single-process" in refused.stderr
        done = cli(server, "stop")
        assert done.returncode == 0, done.stderr
        assert server.proc.wait(10) == 0
    finally:
        server.stop()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a client as another user")
def test_the_control_socket_refuses_another_user(tmp_path: Path, secantus: Secantus) -> None:
    """A client running as nobody cannot connect to the 0600 socket."""
    if shutil.which("runuser") is None:
        pytest.skip("runuser is not installed")
    # pytest's own temporary directories are 0700: nobody could not even reach
    # the socket, whatever its mode. This directory is open to all.
    workdir = Path(tempfile.mkdtemp(prefix="crackershop-ops-"))
    workdir.chmod(0o755)
    server = Server(workdir, env={"MONGO_URI": secantus.uri + "/ops2"}, args=["--workers", "0"])
    try:
        wait_until(lambda: cli(server, "status").returncode == 0, 30, "control socket")
        (workdir / "run").chmod(0o755)  # only the socket's own mode protects it
        probe = (
            "import os,socket,sys\n"
            "assert 'crackershop.sock' in os.listdir(os.path.dirname(sys.argv[1]))\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\n"
            "except PermissionError:\n print('refused'); sys.exit(0)\n"
            "print('connected'); sys.exit(1)\n"
        )
        done = subprocess.run(
            [
                "runuser",
                "-u",
                "nobody",
                "--",
                "python3",
                "-c",
                probe,
                str(workdir / "run" / "crackershop.sock"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.stdout.strip() == "refused", done.stdout + done.stderr
        assert cli(server, "status").returncode == 0
    finally:
        assert server.stop() == 0
        shutil.rmtree(workdir, ignore_errors=True)


def test_monit_redraws_under_a_terminal(tmp_path: Path, secantus: Secantus) -> None:
    """monit, in a pseudo-terminal, redraws the status a few times and stops on Ctrl-C."""
    import pty
    import select

    server = Server(tmp_path, env={"MONGO_URI": secantus.uri + "/monit"}, args=["--workers", "0"])
    try:
        wait_until(lambda: cli(server, "status").returncode == 0, 30, "control socket")
        pid, fd = pty.fork()
        if pid == 0:  # the child: monit on the terminal
            os.chdir(server.workdir)
            # as a terminal starts it: a runner that started this suite in
            # the background leaves SIGINT ignored, and exec would keep that
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve(
                tool("crackershop"),
                [tool("crackershop"), "monit", "--interval", "0.2"],
                child_env({}),
            )
        screen = b""
        deadline = time.monotonic() + 30
        while screen.count(b"crackershop monit") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                screen += os.read(fd, 65536)
        assert screen.count(b"crackershop monit") >= 3, screen[-2000:]
        assert b"\x1b[2J" in screen and str(server.pid).encode() in screen
        os.kill(pid, signal.SIGINT)
        ended: list[int] = []

        def exited() -> bool:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                ended.append(code)
            return bool(done)

        try:
            wait_until(exited, 15, "monit to end on Ctrl-C")
        finally:
            if not ended:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        assert os.WIFEXITED(ended[0]) and os.WEXITSTATUS(ended[0]) == 0
        os.close(fd)
    finally:
        assert server.stop() == 0
