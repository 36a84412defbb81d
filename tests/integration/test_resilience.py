"""A database that goes away: requests fail fast with 503, liveness stays
up, and crackershop recovers by itself when the database returns."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support import Secantus, Server, wait_until


def test_database_outage_and_recovery(tmp_path: Path) -> None:
    """Kill the database: 503 within the timeout, /health 200; restart it: back to 200."""
    db = Secantus(tmp_path / "db")
    server = Server(tmp_path / "srv", env={"MONGO_URI": db.uri, "REQUEST_TIMEOUT": "1500"})
    try:
        with server.client(timeout=10) as c:
            assert c.get("/api/v1/products").status_code == 200
            db.stop()
            started = time.monotonic()
            r = c.get("/api/v1/products")
            elapsed = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "database_unavailable"
            assert elapsed < 5, elapsed
            assert c.get("/health").status_code == 200
            ready = c.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["details"] == {"mongodb": "unavailable"}
            db = Secantus(tmp_path / "db", port=db.port)
            wait_until(lambda: c.get("/ready").status_code == 200, 30, "readiness to recover")
            # Every pooled connection is back within the reconnect back-off.
            wait_until(
                lambda: all(c.get("/api/v1/products").status_code == 200 for _ in range(20)),
                30,
                "the whole pool to recover",
            )
    finally:
        assert server.stop() == 0
        db.stop()


def test_no_embedded_database_when_mongo_uri_is_set(tmp_path: Path, secantus: Secantus) -> None:
    """With MONGO_URI set, nothing is started and no data directory is made."""
    server = Server(tmp_path, env={"MONGO_URI": secantus.uri + "/uri_test"})
    try:
        assert httpx.get(server.url + "/ready").status_code == 200
        assert not (tmp_path / "data").exists()
        assert "starting the embedded database" not in server.output()
    finally:
        assert server.stop() == 0


def test_pool_opens_the_connections_asked_for(tmp_path: Path) -> None:
    """MONGO_MAX_POOL_SIZE=4 opens 4 data connections, plus txmongo's one monitor."""
    import pymongo

    db = Secantus(tmp_path / "db")
    watcher: pymongo.MongoClient = pymongo.MongoClient(db.uri, directConnection=True)

    def current() -> int:
        status = watcher.admin.command("serverStatus")
        return int(status["connections"]["current"])

    base = current()
    server = Server(tmp_path / "srv", env={"MONGO_URI": db.uri, "MONGO_MAX_POOL_SIZE": "4"})
    try:
        members = len(watcher.admin.command("hello").get("hosts", [])) or 1
        wait_until(lambda: current() - base == 4 + members, 30, "the monitor connection")
    finally:
        watcher.close()
        assert server.stop() == 0
        db.stop()
