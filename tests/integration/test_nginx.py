"""The scale-out scenario for real on 127.0.0.1: nginx (deploy/nginx's
configuration) in front of three ``twistd -n crackershop --workers=2``
servers sharing one embedded database and one Redis.

The tests run in file order on one set of servers; the last one kills a
server. Skipped only where no nginx binary exists (.ci/run installs it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration.load import Load
from tests.integration.redis_process import RedisServer
from tests.integration.test_orders_api import Shop, never_oversell
from tests.support import ROOT, Process, Secantus, Server, free_port, wait_until

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="no nginx binary: apt-get install nginx (as .ci/run does)"
)
SHIPPED = ROOT / "deploy" / "nginx" / "crackershop.conf"
AUTH_LIMIT = 20


def nginx_config(workdir: Path, port: int, upstreams: list[int]) -> str:
    """deploy/nginx/crackershop.conf with the test's ports, in a main config
    that keeps every path in ``workdir``; adds an X-Upstream response header
    naming the server that answered."""
    site = SHIPPED.read_text()
    site, n = re.subn(r"^(\s*)server 10\.0\.0\.\d+:5000 ([^;]*);\n", "", site, flags=re.M)
    assert n == 3, "the shipped upstream block changed"
    servers = "".join(
        f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n" for p in upstreams
    )
    site = site.replace("upstream crackershop {\n", "upstream crackershop {\n" + servers)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace(
        "proxy_pass http://crackershop;",
        "proxy_pass http://crackershop;\n        add_header X-Upstream $upstream_addr always;",
    )
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # as root, nginx's workers would drop to `nobody`, who cannot enter pytest's tmp dirs
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log {workdir / 'access.log'};\n{temp}\n{site}\n}}\n"
    )


class Front:
    """nginx, looking like a Server to the orders helpers (``client()``,
    ``workdir/data/db.uri``)."""

    def __init__(self, workdir: Path, database_uri: str, servers: list[Server]) -> None:
        assert NGINX is not None
        self.workdir = workdir
        self.servers = servers
        (workdir / "data").mkdir(parents=True)
        (workdir / "data" / "db.uri").write_text(database_uri)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = workdir / "nginx.conf"
        conf.write_text(nginx_config(workdir, self.port, [s.port for s in servers]))
        self.process = Process(
            [NGINX, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")],
            dict(os.environ),
            workdir,
            workdir / "nginx.out",
        )
        wait_until(lambda: httpx.get(self.url + "/health", timeout=2).status_code == 200, 30)

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, **kwargs)

    def upstream(self, port: int) -> str:
        return f"127.0.0.1:{port}"


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """nginx -> three servers (2 workers each) -> one database, one Redis."""
    base = tmp_path_factory.mktemp("nginx")
    database = Secantus(base / "db")
    redis = RedisServer(base / "redis")
    env = {
        "MONGO_URI": database.uri,
        "REDIS_URL": redis.url,
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "RATE_LIMIT_AUTH_MAX": str(AUTH_LIMIT),
        "MONGO_MAX_POOL_SIZE": "5",
    }
    servers = [
        Server(base / f"server{i}", env=env, args=["--workers", "2"], wait=False) for i in range(3)
    ]
    try:
        for server in servers:
            server.wait_ready()
            server.wait_status(lambda st, s=server: len(s.ready_ids(st)) == 2, 60)  # type: ignore[misc]
        front = Front(base / "front", database.uri, servers)
    except BaseException:
        for server in servers:
            server.stop()
        redis.stop()
        database.stop()
        raise
    yield front
    front.process.stop()
    for server in servers:
        server.stop()
    redis.stop()
    database.stop()


def test_requests_spread_over_all_three(front: Front) -> None:
    """nginx sends requests to every server."""
    seen: Counter[str] = Counter()
    with front.client() as client:
        for _ in range(30):
            r = client.get("/api/v1/products?limit=1")
            assert r.status_code == 200, r.text
            seen[r.headers["x-upstream"]] += 1
    assert set(seen) == {front.upstream(s.port) for s in front.servers}, seen


def test_rate_limit_holds_in_total_across_servers(front: Front) -> None:
    """A client (by X-Forwarded-For) gets exactly RATE_LIMIT_AUTH_MAX failed
    logins in total across the three servers, then 429s."""
    for server in front.servers:
        server.wait_shared_limits()
    codes: Counter[int] = Counter()
    answered: set[str] = set()
    with front.client() as client:
        for _ in range(2 * AUTH_LIMIT):
            r = client.post(
                "/api/v1/auth/login",
                json={"email": "nobody@example.com", "password": "wrong-password"},
                headers={"X-Forwarded-For": "203.0.113.77"},
            )
            codes[r.status_code] += 1
            answered.add(r.headers["x-upstream"])
        other = client.post(
            "/api/v1/auth/login",
            json={"email": "nobody@example.com", "password": "wrong-password"},
            headers={"X-Forwarded-For": "203.0.113.78"},
        )
    assert len(answered) == 3, answered
    assert codes[429] == AUTH_LIMIT and sum(codes.values()) - codes[429] == AUTH_LIMIT, codes
    assert other.status_code == 401, "another client's limit is its own"


def test_no_oversell_across_servers(front: Front) -> None:
    """200 concurrent orders for 50 units through nginx and three servers: exactly 50 placed."""
    shop = Shop(front)  # type: ignore[arg-type]
    try:
        never_oversell(shop)
    finally:
        shop.http.close()
        shop.mongo.close()


def test_rolling_restart_of_every_server_fails_no_request(front: Front) -> None:
    """SIGHUP to each server in turn (each restarts its two workers one by
    one) under GET load through nginx: no request fails."""
    with Load(front.url, keepalive=4, fresh=4, limit=150) as load:
        wait_until(lambda: load.ok > 50, 30, "load to flow")
        for server in front.servers:
            status = server.status()
            assert status is not None
            server.signal(signal.SIGHUP)
            server.wait_rolled(server.ready_ids(status), 60)
        done = load.ok
        wait_until(lambda: load.ok > done + 50, 30, "load after the restarts")
    assert load.failures == [], load.failures[:5]


def test_killed_server_fails_no_get(front: Front) -> None:
    """SIGKILL one server (its master, then its workers go) mid-run: nginx's
    clients see no failed GET. (Runs last: it leaves two servers.)"""
    victim = front.servers[0]
    family = [victim.pid, *(c.pid for c in psutil.Process(victim.pid).children())]
    with Load(front.url, keepalive=4, fresh=4, limit=120) as load:
        wait_until(lambda: load.ok > 50, 30, "load to flow")
        victim.signal(signal.SIGKILL)
        victim.proc.wait(30)
        wait_until(lambda: not [p for p in family if alive(p)], 30, "its workers gone")
        done = load.ok
        wait_until(lambda: load.ok > done + 100, 30, "load after the kill")
    assert load.failures == [], load.failures[:5]
