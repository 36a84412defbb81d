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


def test_memory_of_gone_workers_leaves_metrics(tmp_path: Path) -> None:
    """After a rolling restart and a kill -9, /metrics lists the memory of the live
    workers only, one series each."""
    import json
    import os
    import signal
    import subprocess

    from tests.support import child_env, tool

    server = Server(tmp_path, args=["--workers", "2"])

    def live() -> list[int]:
        done = subprocess.run(
            [tool("crackershop"), "status", "--json"],
            cwd=tmp_path,
            env=child_env({}),
            capture_output=True,
            text=True,
            timeout=30,
        )
        workers = json.loads(done.stdout)["workers"]
        return sorted(w["pid"] for w in workers if w["state"] == "ready")

    def series() -> list[tuple[str, str]]:
        text = httpx.get(server.url + "/metrics").text
        found = re.findall(
            r"^crackershop_worker_resident_memory_bytes"
            r'\{(?=.*pid="(\d+)")(?=.*worker="(\d+)").*\} ',
            text,
            re.MULTILINE,
        )
        return sorted(found)

    def only_live() -> bool:
        pids = live()
        found = series()
        return len(pids) == 2 and sorted(int(pid) for pid, _ in found) == pids

    try:
        wait_until(only_live, 30, "the first workers' memory")
        done = subprocess.run(
            [tool("crackershop"), "restart"],
            cwd=tmp_path,
            env=child_env({}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        wait_until(only_live, 30, "the new workers' memory, and none of the old")
        assert {worker for _, worker in series()} == {"3", "4"}
        os.kill(live()[0], signal.SIGKILL)
        wait_until(only_live, 60, "the killed worker's memory to go")
        assert len(series()) == 2
    finally:
        assert server.stop() == 0, server.output()[-3000:]
