"""Saved addresses change by atomic updates of the stored document: adds from
many clients spread over two workers all land."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support import Server, bearer, register, unique


def test_concurrent_adds_across_two_workers_all_land(tmp_path: Path) -> None:
    """20 adds at once, each on its own connection (so both workers take
    some): 20 answered 201 and 20 are stored, exactly one the default."""
    server = Server(tmp_path, args=["--workers", "2"])
    try:
        with server.client() as c:
            token = register(c, unique("addr") + "@example.com")["token"]

        def add(n: int) -> int:
            with httpx.Client(base_url=server.url, timeout=30) as fresh:
                r = fresh.post(
                    "/api/v1/auth/addresses",
                    headers=bearer(token),
                    json={
                        "label": f"Place {n}",
                        "address": f"{n} Car Street",
                        "pincode": "626123",
                        "district": "Virudhunagar",
                        "state": "Tamil Nadu",
                    },
                )
                return r.status_code

        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(add, range(20)))
        assert codes == [201] * 20
        with server.client() as c:
            stored = c.get("/api/v1/auth/me", headers=bearer(token)).json()["data"]["addresses"]
        assert sorted(a["label"] for a in stored) == sorted(f"Place {n}" for n in range(20))
        assert sum(1 for a in stored if a["isDefault"]) == 1
    finally:
        assert server.stop() == 0
