"""The private Redis (a child redis-server on a UNIX socket) and the shared
limiter's Lua script running in it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from crackershop.children.embedded_redis import EmbeddedRedis, RedisUnavailable
from crackershop.ratelimit.interfaces import MICROS, Policy
from crackershop.ratelimit.memory import MemoryLimiter
from crackershop.ratelimit.redis import RedisLimiter, connect, parse_address
from tests.integration.redis_process import redis_binary


def tcp_listeners(pid: int) -> list[str]:
    """The listening TCP sockets (v4 and v6) that process ``pid`` holds."""
    own = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    rows = [
        line.split()
        for table in ("tcp", "tcp6")
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
    ]
    return [row[1] for row in rows if row[3] == "0A" and f"socket:[{row[9]}]" in own]


@pytest_twisted.ensureDeferred
async def test_private_redis_on_a_socket_runs_the_limiter(tmp_path: Path) -> None:
    """Started: a 0700 socket in the run dir, no TCP port, the Lua bucket exact; stopped: gone."""
    redis_binary()
    run_dir = tmp_path / "run"
    service = EmbeddedRedis(reactor, str(run_dir))
    service.startService()
    try:
        url = await service.whenReady()
        assert url == f"unix://{run_dir.resolve()}/redis.sock"
        mode = stat.S_IMODE(os.stat(service.socket).st_mode)
        assert stat.S_ISSOCK(os.stat(service.socket).st_mode) and mode & 0o077 == 0
        assert tcp_listeners(service.transport.pid) == []

        pool = connect(parse_address(url), 1.0)
        limiter = RedisLimiter(reactor, pool, MemoryLimiter(reactor), timeout=2.0)
        policy = Policy("global", 5, 600)
        outcomes = [await limiter.check("198.51.100.4", [policy], 1) for _ in range(7)]
        assert [o.allowed for o in outcomes] == [True] * 5 + [False] * 2
        assert all(o.shared for o in outcomes)
        assert [o.buckets[0].remaining for o in outcomes] == [4, 3, 2, 1, 0, 0, 0]
        assert 119 * MICROS < outcomes[-1].buckets[0].retry <= 120 * MICROS
        refund = await limiter.check("198.51.100.4", [policy], -1)
        assert refund.buckets[0].remaining == 1
        await limiter.close()
    finally:
        await service.stopService()
    assert not service.socket.exists()


@pytest_twisted.ensureDeferred
async def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    """A redis-server that cannot be found fails whenReady with a message saying so."""
    service = EmbeddedRedis(reactor, str(tmp_path / "run"), find=lambda: None)
    d = service.whenReady()
    service.startService()
    try:
        with pytest.raises(RedisUnavailable, match="no redis-server found"):
            await d
    finally:
        await service.stopService()
