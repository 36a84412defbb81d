"""/metrics counts what every worker served, not only the one answering."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support import Server, wait_until


def sample(name: str, text: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    """Requests spread over two workers are all counted, whichever worker scrapes."""
    server = Server(tmp_path, args=["--workers", "2"])
    try:
        served: dict[str, int] = {}

        def both_served() -> bool:
            r = httpx.get(server.url + "/health", headers={"Connection": "close"})
            assert r.status_code == 200
            served[r.headers["x-worker"]] = served.get(r.headers["x-worker"], 0) + 1
            return len(served) == 2

        wait_until(both_served, 30, "both workers to serve")
        for _ in range(20):
            both_served()
        sent = sum(served.values())
        text = httpx.get(server.url + "/metrics").text
        assert (
            sample(
                "crackershop_http_requests_total", text, route="/health", method="GET", status="200"
            )
            == sent
        ), (served, text[:2000])
        assert (
            sample("crackershop_http_request_duration_seconds_count", text, route="/health") == sent
        )
        assert "crackershop_mongodb_operation_duration_seconds_count" in text
        wait_until(
            lambda: (
                sample(
                    "crackershop_worker_resident_memory_bytes",
                    httpx.get(server.url + "/metrics").text,
                )
                > 0
            ),
            20,
            "the master's memory samples",
        )
    finally:
        assert server.stop() == 0, server.output()[-3000:]
