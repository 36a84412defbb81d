"""The real ``twistd -n crackershop --workers=2``: a master, its workers, the
shared socket, and every way a worker comes and goes, under load."""

from __future__ import annotations

import contextlib
import json
import platform
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import httpx
import psutil
import pytest

from tests.integration.load import Load, raw_request
from tests.support import Secantus, Server, free_port, wait_until

CLUSTER = ["--workers", "2"]


def workers(server: Server) -> dict[int, int]:
    """The master's live worker processes: pid -> worker id."""
    found = {}
    for child in psutil.Process(server.pid).children():
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "crackershop.cluster.worker" in cmd and child.status() != psutil.STATUS_ZOMBIE:
            found[child.pid] = int(cmd[cmd.index("--worker-id") + 1])
    return found


def answered_by(server: Server) -> str:
    r = httpx.get(server.url + "/health", headers={"connection": "close"}, timeout=10)
    assert r.status_code == 200
    return r.headers["x-worker"]


def log_lines(server: Server) -> list[dict[str, object]]:
    path = server.workdir / "logs" / "crackershop.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def all_ready(server: Server) -> None:
    server.wait_status(lambda s: len(server.ready_ids(s)) == 2, 30, "both workers ready")


@pytest.fixture
def cluster(tmp_path: Path, secantus: Secantus) -> Iterator[Server]:
    """Two workers on the shared test database."""
    server = Server(tmp_path, env={"MONGO_URI": secantus.uri + "/cluster"}, args=CLUSTER)
    all_ready(server)
    yield server
    assert server.stop() == 0, server.output()[-3000:]


def test_both_workers_serve_and_write_the_servers_log(tmp_path: Path) -> None:
    """Embedded database: both workers answer and write their own lines to the
    server's log file, USR1 reopens it."""
    server = Server(tmp_path, args=CLUSTER)
    try:
        seen: set[str] = set()
        wait_until(lambda: seen.add(answered_by(server)) or len(seen) == 2, 30, "both workers")
        assert seen == {"1", "2"}
        status = server.status()
        assert status is not None
        # one embedded database, started by the master, for both workers
        assert [c["name"] for c in status["children"]].count("database") == 1
        assert status["database"].endswith("(embedded)")
        workers_logged = [e for e in log_lines(server) if e.get("worker")]
        assert {e["worker"] for e in workers_logged} == {1, 2}
        pids = {e["worker"]: e["process.pid"] for e in workers_logged if "process.pid" in e}
        running = {int(k.split("-")[1]): v for k, v in server.pids().items() if "worker-" in k}
        assert pids == running
        assert "[worker-1]" in server.output()
        # rotated away by another tool: SIGUSR1 opens the log file again
        path = server.workdir / "logs" / "crackershop.log"
        path.rename(path.with_name("rotated.log"))
        server.signal(signal.SIGUSR1)
        wait_until(path.exists, 10, "SIGUSR1 to reopen the log file")
    finally:
        assert server.stop() == 0, server.output()[-3000:]


def test_sixteen_connections_spread_over_two_workers(cluster: Server) -> None:
    """16 keep-alive connections opened at once split no worse than 10/6."""
    socks = [socket.create_connection(("127.0.0.1", cluster.port)) for _ in range(16)]
    try:
        counts = Counter(raw_request(cluster.port, s)[1] for s in socks)
    finally:
        for s in socks:
            s.close()
    assert len(counts) == 2 and min(counts.values()) >= 6, counts


def test_killed_worker_is_replaced_quickly_and_service_never_stops(cluster: Server) -> None:
    """kill -9 one worker: every request still succeeds and a new worker serves.

    How soon is printed (about 0.8-1.4 s here); it is a figure for the
    benchmark notes, not an assertion, since a loaded machine stretches it."""
    before = workers(cluster)
    victim = min(before)
    cluster_ids = set(before.values())
    psutil.Process(victim).send_signal(signal.SIGKILL)
    killed = time.monotonic()
    seen: set[str] = set()
    replaced: Optional[float] = None
    while time.monotonic() - killed < 10:
        seen.add(answered_by(cluster))  # asserts 200 every time
        if seen - {str(i) for i in cluster_ids}:
            replaced = time.monotonic() - killed
            break
    assert replaced is not None, cluster.output()[-2000:]
    print(f"killed worker replaced and serving after {replaced:.2f}s")
    assert len(workers(cluster)) == 2


def test_rolling_restart_under_load_fails_nothing(cluster: Server) -> None:
    """SIGHUP under 50 concurrent clients: all workers replaced, zero failed requests."""
    old = set(workers(cluster).values())
    with Load(cluster.url, limit=60) as load:
        wait_until(lambda: load.ok > 200, 30, "load to start")
        cluster.signal(signal.SIGHUP)
        cluster.wait_rolled(old, 40)
        wait_until(lambda: not set(workers(cluster).values()) & old, 20, "old workers to exit")
        settled = load.ok
        wait_until(lambda: load.ok > settled + 200, 30, "load after the restart")
    print(f"rolling restart under load: {load.ok} ok, {len(load.failures)} failed")
    assert load.failures == [], (load.failures[:5], cluster.output()[-3000:])
    assert len(workers(cluster)) == 2


def test_memory_recycle_under_load_fails_nothing(tmp_path: Path, secantus: Secantus) -> None:
    """A limit a little above an idle worker's size: workers grow past it under load
    and are recycled, zero failures. (Below the idle size is refused at start.)"""
    probe = Server(tmp_path / "probe", env={"MONGO_URI": secantus.uri + "/cluster"}, args=CLUSTER)
    try:
        idle = max(psutil.Process(pid).memory_info().rss for pid in workers(probe))
    finally:
        assert probe.stop() == 0
    # Under CPython a worker grows by 0.4-0.7 MB in its first seconds under
    # this load (it writes its own log lines; nothing piles up for the
    # master): a quarter of a MiB above the idle size is crossed without
    # fail, and is well above how much two idle workers differ (under 0.1
    # MB). Under PyPy idle workers differ by a MB or so and grow by tens of
    # MB under load (the JIT's code, the GC's nursery): 4 MiB above.
    limit = idle // 1024 + (4096 if platform.python_implementation() == "PyPy" else 256)
    server = Server(
        tmp_path,
        env={"MONGO_URI": secantus.uri + "/cluster", "MAX_MEMORY": f"{limit}kb"},
        args=CLUSTER,
    )

    def recycled(status: dict[str, Any]) -> int:
        rows = [w for w in status["workers"] if w.get("reason") == "memory"]
        return sum(w["restarts"] for w in rows)

    try:
        with Load(server.url, limit=60) as load:
            server.wait_status(lambda s: recycled(s) >= 2, 40, "two recycles")
            ok = load.ok
            wait_until(lambda: load.ok > ok + 100, 30, "load after recycling")
        print(f"memory recycle under load: {load.ok} ok, {len(load.failures)} failed")
        assert load.failures == [], (load.failures[:5], server.output()[-3000:])
    finally:
        assert server.stop() == 0


BODY = b'{"email":"nobody@example.com","password":"wrong-password"}'


def slow_post(port: int) -> socket.socket:
    """Start a login whose body the client uploads slowly: a request in flight."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY[:10]
    )
    return sock


def finish(sock: socket.socket, seconds: float) -> bytes:
    """Upload the rest of the body over ``seconds``, then read the response."""
    rest = BODY[10:]
    step = seconds / len(rest)
    for byte in rest:
        sock.sendall(bytes([byte]))
        due = time.monotonic() + step
        wait_until(lambda due=due: time.monotonic() >= due, step + 5)  # type: ignore[misc]
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_sigterm_lets_a_slow_request_finish(tmp_path: Path, secantus: Secantus) -> None:
    """SIGTERM during a slow upload: the response arrives, the master exits 0 in the grace time."""
    server = Server(
        tmp_path,
        env={"MONGO_URI": secantus.uri + "/cluster", "GRACEFUL_TIMEOUT": "5"},
        args=CLUSTER,
    )
    all_ready(server)
    sock = slow_post(server.port)
    server.signal(signal.SIGTERM)
    started = time.monotonic()
    response = finish(sock, 2.0)
    assert response.startswith(b"HTTP/1.1 401"), response
    assert b"connection: close" in response.lower()
    code = server.proc.wait(15)
    elapsed = time.monotonic() - started
    server.stop()
    assert code == 0, server.output()[-2000:]
    assert elapsed < 5 + 2, elapsed


def test_request_longer_than_the_grace_period_is_cut(tmp_path: Path, secantus: Secantus) -> None:
    """A request outlasting GRACEFUL_TIMEOUT: its worker is killed at the deadline; exit 0."""
    server = Server(
        tmp_path,
        env={"MONGO_URI": secantus.uri + "/cluster", "GRACEFUL_TIMEOUT": "1.5"},
        args=CLUSTER,
    )
    all_ready(server)
    sock = slow_post(server.port)
    server.signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        response = finish(sock, 10.0)
    except OSError:
        response = b""
    assert response == b"", response
    code = server.proc.wait(15)
    elapsed = time.monotonic() - started
    server.stop()
    assert code == 0
    assert "did not finish within 1.5s; killing it" in server.output()
    assert elapsed < 1.5 + 3, elapsed


def test_crash_looping_worker_backs_off_and_gives_up(cluster: Server) -> None:
    """A slot whose workers keep dying right after start backs off, then is abandoned."""
    killed: set[int] = set()

    def kill_slot_one() -> bool:
        status = cluster.status()
        if status is None:
            return False
        slot_one = [row for row in status["workers"] if row["slot"] == 1]
        if killed and not slot_one:
            return True  # given up: the slot is gone
        for row in slot_one:
            pid = row["pid"]
            if row["state"] == "ready" and pid not in killed:
                killed.add(pid)
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).send_signal(signal.SIGKILL)
        return False

    wait_until(kill_slot_one, 60, "the slot to be given up")
    # waited 0 s after the first crash, then twice as long after each quick one
    delays = {e["delay"] for e in log_lines(cluster) if "delay" in e}
    assert {0.0, 0.5, 1.0, 2.0} <= delays, delays
    assert len(killed) == 5
    status = cluster.status()
    assert status is not None and [w["slot"] for w in status["workers"]] == [2]
    assert len(workers(cluster)) == 1
    assert answered_by(cluster)


def test_worker_that_cannot_boot_stops_the_master(tmp_path: Path) -> None:
    """A database URI nothing answers on: the master exits non-zero and says why."""
    server = Server(
        tmp_path,
        env={"MONGO_URI": f"mongodb://127.0.0.1:{free_port()}", "REQUEST_TIMEOUT": "1500"},
        args=CLUSTER,
        wait=False,
    )
    code = server.proc.wait(60)
    server.stop()
    assert code != 0
    assert "does not answer" in server.output(), server.output()[-2000:]
    assert "Traceback" not in server.output()


def test_port_in_use_stops_the_master(tmp_path: Path) -> None:
    """The master cannot bind: it exits non-zero naming the address, no worker starts."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = Server(tmp_path, env={"PORT": str(port)}, args=CLUSTER, wait=False)
        code = server.proc.wait(60)
        server.stop()
    assert code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in server.output()
    assert "started worker" not in server.output()
