"""The HTTP edge is the same in every mode: a single process and each worker
of a cluster obey the same header limits, answer malformed and too slow
requests with the JSON envelope, and cut a trickled request line."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support import Secantus, Server

ARRIVAL = 2.0  # REQUEST_TIMEOUT of these servers, in seconds


@pytest.fixture(scope="module", params=["0", "2"], ids=["single-process", "two-workers"])
def edge(
    request: pytest.FixtureRequest, secantus: Secantus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workers = request.param
    server = Server(
        tmp_path_factory.mktemp(f"edge-{workers}"),
        env={
            "MONGO_URI": secantus.uri + "/edge",
            "MAX_HEADERS": "10",
            "REQUEST_TIMEOUT": f"{ARRIVAL:g}s",
            "WORKERS": workers,
        },
    )
    yield server
    assert server.stop() == 0, server.output()[-3000:]


def exchange(port: int, raw: bytes) -> tuple[str, dict[str, object]]:
    """Send ``raw`` on a new connection; the status line and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert any(line.lower().startswith("content-type: application/json") for line in lines), head
    return lines[0], json.loads(body)


def test_too_many_headers_is_a_json_431_in_every_mode(edge: Server) -> None:
    """20 headers with MAX_HEADERS=10: a JSON 431 from every process, over fresh connections."""
    headers = b"".join(b"X-Extra-%d: a\r\n" % i for i in range(20))
    for _ in range(10):
        status, body = exchange(
            edge.port, b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"
        )
        assert status.startswith("HTTP/1.1 431 "), status
        assert body["success"] is False and body["code"] == "headers_too_large"


def test_malformed_request_is_a_json_400_in_every_mode(edge: Server) -> None:
    """A malformed request head gets the JSON envelope, not Twisted's plain-text 400."""
    for _ in range(6):
        status, body = exchange(edge.port, b"GET /api HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        assert status.startswith("HTTP/1.1 400 "), status
        assert body["code"] == "bad_request"


def test_trickled_request_line_gets_408_within_the_bound(edge: Server) -> None:
    """A request line sent one byte every half second is answered 408 (JSON) and closed
    REQUEST_TIMEOUT after its first byte, not kept open by each byte."""
    line = b"GET /api/v1/products?page=1&limit=10 HTTP/1.1\r\n"
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        started = time.monotonic()
        data = b""
        for byte in line:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                break
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), data[:200]
    assert json.loads(body)["code"] == "request_timeout"
    assert ARRIVAL - 0.5 <= elapsed <= ARRIVAL + 2.0, elapsed
