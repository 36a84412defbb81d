"""A fresh server taking writes from its first moment: the embedded
database's schema is set up before any write reaches it, so the first
sign-ups never stall it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support import Server, wait_until

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_writes_from_the_first_moment_never_stall_the_database(tmp_path: Path) -> None:
    """Sign-ups with avatars (users, uploads) sent while the server is still
    setting up its schema are answered 201 or 503 "starting", never left
    hanging; once ready, every one of them goes through."""
    server = Server(tmp_path, wait=False)
    try:
        wait_until(lambda: _answers(server), 60, "the port to accept connections")

        def sign_up(n: int) -> tuple[int, str]:
            fields = {
                "name": f"Early {n}",
                "email": f"early-{n}-{uuid.uuid4().hex[:6]}@example.com",
                "password": "early-bird-1",
            }
            with httpx.Client(base_url=server.url, timeout=20) as c:
                r = c.post(
                    "/api/v1/auth/register",
                    data=fields,
                    files={"avatar": ("a.png", PNG, "image/png")},
                )
                return r.status_code, r.json().get("code", "")

        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(sign_up, range(24)))
        assert set(first) <= {(201, ""), (503, "starting")}, first
        server.wait_ready()
        with ThreadPoolExecutor(8) as pool:
            after = list(pool.map(sign_up, range(24, 48)))
        assert after == [(201, "")] * 24
    finally:
        assert server.stop() == 0


def _answers(server: Server) -> bool:
    try:
        httpx.get(server.url + "/health", timeout=2)
    except httpx.TransportError:
        return False
    return True
