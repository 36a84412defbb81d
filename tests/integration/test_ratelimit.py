"""Rate limits and CORS through real ``twistd -n crackershop`` servers and a
real Redis: exact shared limits, failures-only auth limit, client IP rules,
Redis outages, and CORS."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.redis_process import RedisServer
from tests.support import Secantus, Server, child_env, tool, wait_until

ORIGIN = "https://shop.example"
LIMITS = {
    "RATE_LIMIT_MAX_REQUESTS": "20",
    "RATE_LIMIT_WRITE_MAX": "10",
    "RATE_LIMIT_AUTH_MAX": "3",
    "TRUSTED_PROXIES": "127.0.0.1/32",
    "ALLOWED_ORIGINS": ORIGIN,
    # Google sign-in on; a malformed ID token is refused before any key is fetched
    "GOOGLE_CLIENT_ID": "shop-test.apps.googleusercontent.com",
    "GOOGLE_CERTS_URL": "http://127.0.0.1:9/certs",
}
_clients = (f"198.18.{n // 250}.{n % 250 + 1}" for n in itertools.count())


def client_ip() -> str:
    """A client address of its own, sent through the trusted proxy (127.0.0.1)."""
    return next(_clients)


def via(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pair(
    redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    """Two crackershop servers, each with its own database, sharing one Redis."""
    env = {**LIMITS, "REDIS_URL": redis.url}
    a = Server(tmp_path_factory.mktemp("a"), env)
    try:
        b = Server(tmp_path_factory.mktemp("b"), env)
    except BaseException:
        a.stop()
        raise
    yield a, b
    assert a.stop() == 0, a.output()[-3000:]
    assert b.stop() == 0, b.output()[-3000:]


def codes(client: httpx.Client, n: int, headers: dict[str, str], path: str = "/api") -> list[int]:
    return [client.get(path, headers=headers).status_code for _ in range(n)]


def test_exactly_the_limit_of_100_requests(pair: tuple[Server, Server]) -> None:
    """Limit 20: of 100 requests from one client exactly 20 pass, with the headers and 429 body."""
    a, _ = pair
    ip = client_ip()
    with a.client() as c:
        answers = [c.get("/api", headers=via(ip)) for _ in range(100)]
    assert [r.status_code for r in answers] == [200] * 20 + [429] * 80
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["19", "18", "17"]
    assert answers[0].headers["X-RateLimit-Limit"] == "20"
    refused = answers[-1]
    assert refused.json() == {
        "success": False,
        "error": "Too many requests, please try again later",
        "code": "rate_limited",
    }
    # 20 per 15 minutes: one request comes back every 45 s
    assert 0 < int(refused.headers["Retry-After"]) <= 45
    assert refused.headers["RateLimit-Remaining"] == "0"


def test_two_workers_share_one_limit_without_redis(tmp_path: Path, secantus: Secantus) -> None:
    """Two workers and no Redis anywhere (an empty PATH for the server): the
    buckets they share in memory hold one limit, 20 of 100, and /ready names
    no Redis."""
    env = {**LIMITS, "MONGO_URI": secantus.uri + "/sharedmem", "PATH": str(tmp_path / "none")}
    server = Server(tmp_path, env, args=["--workers", "2"])
    try:
        ip = client_ip()
        served: set[str] = set()
        allowed = 0
        with server.client() as c:
            for _ in range(100):
                r = c.get("/api", headers={**via(ip), "Connection": "close"})
                allowed += r.status_code != 429
                served.add(r.headers.get("x-worker", "?"))
            assert c.get("/ready").json()["checks"] == {"mongodb": "ok"}
        assert allowed == 20
        assert len(served) == 2, served
        assert "rate limits kept in memory shared by this server's workers" in server.output()
    finally:
        assert server.stop() == 0, server.output()[-3000:]


def test_two_servers_share_one_limit(pair: tuple[Server, Server]) -> None:
    """Two servers on one Redis give a client 20 in total, not 20 each."""
    a, b = pair
    ip = client_ip()
    with a.client() as ca, b.client() as cb:
        results = []
        for _ in range(50):
            results += [ca.get("/api", headers=via(ip)).status_code]
            results += [cb.get("/api", headers=via(ip)).status_code]
    assert sorted(set(results)) == [200, 429]
    assert results.count(200) == 20


def test_auth_limiter_counts_failures_only(pair: tuple[Server, Server]) -> None:
    """Successful logins never use up the auth limit; the 4th failure is refused."""
    a, _ = pair
    ip = client_ip()
    creds = {"email": f"rl-{ip}@shop.test", "password": "password123"}
    with a.client() as c:
        r = c.post("/api/v1/auth/register", json={"name": "Rate", **creds}, headers=via(ip))
        assert r.status_code == 201, r.text
        # more successes than the auth limit (3), fewer writes than the writes limit (10)
        for _ in range(4):
            assert c.post("/api/v1/auth/login", json=creds, headers=via(ip)).status_code == 200
        wrong = {**creds, "password": "not-the-password"}
        fails = [
            c.post("/api/v1/auth/login", json=wrong, headers=via(ip)).status_code for _ in range(5)
        ]
        assert fails == [401, 401, 401, 429, 429]
        refused = c.post("/api/v1/auth/login", json=creds, headers=via(ip))
        assert refused.status_code == 429 and refused.headers["RateLimit-Limit"] == "3"
        # other routes are not held back by the auth limit
        assert c.get("/api", headers=via(ip)).status_code == 200


def test_google_sign_in_failures_use_up_the_auth_limit(pair: tuple[Server, Server]) -> None:
    """Failed Google sign-ins are counted by the auth limiter: the 4th is refused,
    and so is a password login from the same client after them."""
    a, _ = pair
    ip = client_ip()
    with a.client() as c:
        fails = [
            c.post("/api/v1/auth/google", json={"idToken": "not.a.token"}, headers=via(ip))
            for _ in range(4)
        ]
        assert [f.status_code for f in fails] == [401, 401, 401, 429], fails[-1].text
        assert fails[-1].headers["RateLimit-Limit"] == "3"
        login = {"email": f"g-{ip}@shop.test", "password": "password123"}
        assert c.post("/api/v1/auth/login", json=login, headers=via(ip)).status_code == 429


def test_writes_limiter(pair: tuple[Server, Server]) -> None:
    """The 11th write in the window is refused while reads still pass."""
    a, _ = pair
    ip = client_ip()
    with a.client() as c:
        writes = [c.post("/api/v1/auth/addresses", json={}, headers=via(ip)) for _ in range(11)]
        assert [w.status_code for w in writes[:10]] == [401] * 10
        assert writes[10].status_code == 429
        assert writes[10].headers["RateLimit-Limit"] == "10"
        assert c.get("/api", headers=via(ip)).status_code == 200


def test_spoofed_forwarded_for_changes_nothing(pair: tuple[Server, Server]) -> None:
    """From an untrusted peer (127.0.0.2) a fresh X-Forwarded-For per request buys nothing."""
    a, _ = pair
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=a.url, transport=transport, timeout=30) as c:
        results = [c.get("/api", headers=via(client_ip())).status_code for _ in range(30)]
    assert results == [200] * 20 + [429] * 10


def test_trusted_proxy_uses_rightmost_untrusted_hop(pair: tuple[Server, Server]) -> None:
    """Behind the trusted proxy the client is the right-most untrusted hop, not the left-most."""
    a, _ = pair
    real, other = client_ip(), client_ip()
    with a.client() as c:
        assert codes(c, 20, via(f"6.6.6.6, {real}")) == [200] * 20
        assert codes(c, 1, via(real)) == [429]
        assert codes(c, 1, via(f"7.7.7.7, {real}")) == [429]
        assert codes(c, 1, via(f"6.6.6.6, {other}")) == [200]


def test_probes_are_never_limited(pair: tuple[Server, Server]) -> None:
    """/health and /ready answer 200 to a client that is over its limit."""
    a, _ = pair
    ip = client_ip()
    with a.client() as c:
        codes(c, 21, via(ip))
        assert codes(c, 5, via(ip), "/health") == [200] * 5
        ready = c.get("/ready", headers=via(ip))
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"mongodb": "ok", "redis": "ok"}


def test_cors_through_the_server(pair: tuple[Server, Server]) -> None:
    """Preflight, listed and unlisted origins, and CORS on 404 and 429, end to end."""
    a, _ = pair
    ip = client_ip()
    with a.client() as c:
        pre = c.request(
            "OPTIONS",
            "/api/v1/products",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", **via(ip)},
        )
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert pre.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "Idempotency-Key" in pre.headers["Access-Control-Allow-Headers"]
        assert "RateLimit-Limit" not in pre.headers  # preflights are not limited
        evil = c.get("/api", headers={"Origin": "https://evil.example", **via(ip)})
        assert evil.status_code == 200 and "Access-Control-Allow-Origin" not in evil.headers
        missing = c.get("/nowhere", headers={"Origin": ORIGIN, **via(ip)})
        assert missing.status_code == 404
        assert missing.headers["Access-Control-Allow-Origin"] == ORIGIN
        codes(c, 20, via(ip))
        limited = c.get("/api", headers={"Origin": ORIGIN, **via(ip)})
        assert limited.status_code == 429
        assert limited.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = limited.headers["Access-Control-Expose-Headers"]
        for name in ("Retry-After", "RateLimit-Remaining", "X-Request-ID", "Idempotent-Replayed"):
            assert name in exposed, name
        # preflights are answered even for a client over its limit
        again = c.request("OPTIONS", "/api", headers={"Origin": ORIGIN, **via(ip)})
        assert again.status_code == 204


# -- a server whose Redis goes away: 5 per 5 s, one request back every second


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any]]:
    workdir = tmp_path_factory.mktemp("fragile")
    redis = RedisServer(workdir / "redis")
    env = {
        "REDIS_URL": redis.url,
        "RATE_LIMIT_MAX_REQUESTS": "5",
        "RATE_LIMIT_WINDOW_MS": "5000",
        "TRUSTED_PROXIES": "127.0.0.1/32",
    }
    holder = {"redis": redis}
    try:
        server = Server(workdir / "server", env)
    except BaseException:
        redis.stop()
        raise
    yield server, holder
    assert server.stop() == 0, server.output()[-3000:]
    holder["redis"].stop()


def test_retry_after_is_honest(fragile: tuple[Server, Any]) -> None:
    """Retrying after Retry-After seconds succeeds."""
    server, _ = fragile
    ip = client_ip()
    with server.client() as c:
        assert codes(c, 5, via(ip)) == [200] * 5
        refused = c.get("/api", headers=via(ip))
        assert refused.status_code == 429
        retry = int(refused.headers["Retry-After"])
        assert retry == 1
        due = time.monotonic() + retry
        wait_until(lambda: time.monotonic() >= due, retry + 5, "Retry-After to pass")
        assert c.get("/api", headers=via(ip)).status_code == 200


def test_redis_outage_falls_back_and_recovers(fragile: tuple[Server, Any]) -> None:
    """Redis killed: no 5xx, local limits, /ready degraded; back: shared limits again."""
    server, holder = fragile
    redis: RedisServer = holder["redis"]
    ip = client_ip()
    with server.client() as c:
        assert codes(c, 6, via(ip)) == [200] * 5 + [429]
        redis.stop()
        during = codes(c, 40, via(client_ip()))
        assert set(during) <= {200, 429} and 429 in during and 200 in during
        ready = c.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "degraded"
        assert "not answering" in server.output()
        assert server.output().count("rate limits fall back") == 1

        holder["redis"] = redis = RedisServer(redis.workdir, port=redis.port)
        wait_until(
            lambda: c.get("/ready").json()["checks"]["redis"] == "ok", 30, "Redis to be used again"
        )
        again = client_ip()
        assert codes(c, 1, via(again)) == [200]
        wait_until(lambda: redis.command("KEYS", "rl:*"), 10, "a bucket in the new Redis")
        assert f"rl:{{{again}}}:global" in redis.command("KEYS", "rl:*")


def _allowed_per_worker(server: Server, n: int) -> Counter[str]:
    """n requests from one new client, each on a new connection: 2xx per worker."""
    ip = client_ip()
    allowed: Counter[str] = Counter()
    with server.client() as c:
        for _ in range(n):
            r = c.get("/api", headers={**via(ip), "Connection": "close"})
            assert r.status_code in (200, 429), r.text
            if r.status_code == 200:
                allowed[r.headers["x-worker"]] += 1
    return allowed


def test_redis_down_falls_back_to_the_servers_own_shared_buckets(
    tmp_path: Path, secantus: Secantus
) -> None:
    """Redis killed under 2 workers: the buckets the workers share in memory take
    over, so 100 requests from one new client pass exactly 20 whichever worker
    they reach; after `crackershop scale 4`, still exactly 20."""
    redis = RedisServer(tmp_path / "redis")
    env = {**LIMITS, "REDIS_URL": redis.url, "MONGO_URI": secantus.uri + "/share"}
    try:
        server = Server(tmp_path / "server", env, args=["--workers", "2"])
    except BaseException:
        redis.stop()
        raise
    try:
        redis.stop()
        allowed = _allowed_per_worker(server, 100)
        print("2 workers, Redis down: allowed per worker", dict(allowed))
        assert sum(allowed.values()) == 20, allowed
        scaled = subprocess.run(
            [tool("crackershop"), "scale", "4"],
            cwd=server.workdir,
            env=child_env(server.settings),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert scaled.returncode == 0, scaled.stderr
        wait_until(
            lambda: [w["state"] for w in (server.status() or {})["workers"]] == ["ready"] * 4,
            60,
            "four ready workers",
        )
        allowed = _allowed_per_worker(server, 100)
        print("4 workers, Redis down: allowed per worker", dict(allowed))
        assert sum(allowed.values()) == 20, allowed
    finally:
        assert server.stop() == 0, server.output()[-3000:]
