"""/ready answers within 2 s when the database hangs, naming it and why."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.support import Secantus, Server, wait_until


def test_ready_answers_in_time_when_the_database_hangs(tmp_path: Path) -> None:
    """A database that stops answering (SIGSTOP, connections open) gives a 503 from
    /ready in under 2 s with the reason; it is 200 again once the database resumes."""
    database = Secantus(tmp_path / "db")
    server = Server(tmp_path / "srv", env={"MONGO_URI": database.uri + "/ready"})
    try:
        database.signal(signal.SIGSTOP)
        for _ in range(3):
            began = time.monotonic()
            r = httpx.get(server.url + "/ready", timeout=10)
            took = time.monotonic() - began
            assert r.status_code == 503 and took < 2, (r.status_code, took)
            body = r.json()
            assert body["error"] == "Not ready: mongodb did not answer within 1.5s", body
            assert body["details"] == {"mongodb": "unavailable"}
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        database.signal(signal.SIGCONT)
        wait_until(
            lambda: httpx.get(server.url + "/ready", timeout=10).status_code == 200,
            30,
            "readiness after the database resumed",
        )
    finally:
        database.signal(signal.SIGCONT)
        assert server.stop() == 0, server.output()[-3000:]
        database.stop()
