"""A single-process server restarts in place: the systemd unit's reload
(SIGHUP) and ``crackershop restart`` read the settings and certificates
again under load with no failed request, and ``logs`` reads its log file."""

from __future__ import annotations

import shlex
import signal
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import trustme

from tests.integration.load import Load
from tests.integration.test_tls import handshake, write_pair
from tests.support import Secantus, Server, child_env, tool, wait_until


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("crackershop"), *args],
        cwd=server.workdir,
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def unit_reload(server: Server) -> list[str]:
    """The ExecReload command of the unit ``install-service`` writes, for this server."""
    unit = cli(server, "install-service", "--print")
    assert unit.returncode == 0, unit.stderr
    [line] = [x for x in unit.stdout.splitlines() if x.startswith("ExecReload=")]
    command = line.split("=", 1)[1].replace("$MAINPID", str(server.pid))
    return shlex.split(command)


def restarts(status: dict[str, Any]) -> int:
    """How often the single process has restarted in place."""
    count: int = status["workers"][0]["restarts"]
    return count


def refused(status: dict[str, Any]) -> int:
    """How many restarts in place it has refused."""
    count: int = status["workers"][0]["refused"]
    return count


def test_systemd_reload_under_load_fails_nothing(tmp_path: Path, secantus: Secantus) -> None:
    """The unit's reload, three times under load, fails no request, keeps the same
    process, and applies a changed .env; restart and logs work on it too."""
    server = Server(tmp_path, env={"MONGO_URI": secantus.uri + "/hup"}, args=["--workers", "0"])
    origin = "https://reloaded.example"
    try:
        reload = unit_reload(server)
        assert reload == ["/bin/kill", "-HUP", str(server.pid)]
        with httpx.Client(base_url=server.url) as c:
            assert (
                "access-control-allow-origin"
                not in c.get("/api", headers={"origin": origin}).headers
            )
        (tmp_path / ".env").write_text(f"ALLOWED_ORIGINS={origin}\nLOG_MAX_FILES=9\n")
        with Load(server.url, keepalive=10, fresh=10, limit=90) as load:
            wait_until(lambda: load.ok > 100, 30, "load to start")
            for n in range(1, 4):
                subprocess.run(reload, check=True, timeout=10)
                server.wait_status(lambda s, n=n: restarts(s) == n, 30, "the restart")
                settled = load.ok
                wait_until(lambda s=settled: load.ok > s + 100, 30, "load after the restart")
        assert load.failures == [], load.failures[:5]
        assert server.proc.poll() is None
        assert "LOG_MAX_FILES changed" in server.output()
        with httpx.Client(base_url=server.url) as c:
            r = c.get("/api", headers={"origin": origin})
            assert r.headers["access-control-allow-origin"] == origin

        done = cli(server, "restart")
        assert done.returncode == 0, done.stderr
        assert "restarted in place" in done.stdout and "LOG_MAX_FILES changed" in done.stdout
        logs = cli(server, "logs", "-n", "20")
        assert logs.returncode == 0, logs.stderr
        assert "restarted in place" in logs.stdout
        (tmp_path / ".env").write_text("LOG_MAX_FILES=banana\n")
        subprocess.run(reload, check=True, timeout=10)
        status = server.wait_status(lambda s: refused(s) == 1, 30, "the refusal")
        assert "LOG_MAX_FILES='banana' is invalid" in status["workers"][0]["refusal"]
        assert httpx.get(server.url + "/ready").status_code == 200
    finally:
        assert server.stop() == 0, server.output()[-3000:]


def test_sighup_serves_a_renewed_certificate(tmp_path: Path, secantus: Secantus) -> None:
    """New connections after SIGHUP get the certificate now in the files; an open
    connection keeps working; a key that does not match is refused and the
    renewed certificate stays in use."""
    ca = trustme.CA()
    cert, key = write_pair(ca, tmp_path, "site")
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    server = Server(
        tmp_path / "srv",
        env={"MONGO_URI": secantus.uri + "/hup_tls", "TLS_CERT": str(cert), "TLS_KEY": str(key)},
        verify=verify,
    )
    try:
        first = handshake(server.port, verify)
        with server.client() as open_connection:
            assert open_connection.get("/health").status_code == 200
            renewed_cert, renewed_key = write_pair(ca, tmp_path, "renewed")
            cert.write_bytes(renewed_cert.read_bytes())
            key.write_bytes(renewed_key.read_bytes())
            server.signal(signal.SIGHUP)
            second = wait_until(
                lambda: (der := handshake(server.port, verify)) != first and der, 30, "new cert"
            )
            assert open_connection.get("/health").status_code == 200
        other_cert, _ = write_pair(ca, tmp_path, "other")
        cert.write_bytes(other_cert.read_bytes())  # its key is not in TLS_KEY
        server.signal(signal.SIGHUP)
        status = server.wait_status(lambda s: refused(s) == 1, 30, "the refusal")
        assert "does not match" in status["workers"][0]["refusal"]
        assert handshake(server.port, verify) == second
        assert httpx.get(server.url + "/ready", verify=verify).status_code == 200
    finally:
        assert server.stop() == 0, server.output()[-3000:]
