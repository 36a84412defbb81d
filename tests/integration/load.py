"""A bounded load generator for cluster tests: keep-alive clients and
new-connection clients hammering 127.0.0.1 until told to stop (or a hard
time limit), recording every failure."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from typing import Optional

import httpx

PATHS = ("/health", "/api/v1/products?limit=1")


class Load:
    def __init__(self, url: str, keepalive: int = 25, fresh: int = 25, limit: float = 60.0) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.workers: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + limit
        self._threads = [
            threading.Thread(target=self._keepalive, daemon=True) for _ in range(keepalive)
        ] + [threading.Thread(target=self._fresh, daemon=True) for _ in range(fresh)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _record(self, response: Optional[httpx.Response], error: Optional[str]) -> None:
        with self._lock:
            if error is not None:
                self.failures.append(error)
            elif response is not None and response.status_code != 200:
                self.failures.append(f"{response.status_code} {response.text[:200]}")
            else:
                self.ok += 1
                if response is not None:
                    self.workers[response.headers.get("x-worker", "?")] += 1

    def _keepalive(self) -> None:
        with httpx.Client(base_url=self.url, timeout=20) as client:
            n = 0
            while self._running():
                n += 1
                try:
                    self._record(client.get(PATHS[n % 2]), None)
                except httpx.HTTPError as e:
                    self._record(None, f"keep-alive: {type(e).__name__}: {e}")

    def _fresh(self) -> None:
        n = 0
        while self._running():
            n += 1
            try:
                r = httpx.get(self.url + PATHS[n % 2], timeout=20, headers={"connection": "close"})
                self._record(r, None)
            except httpx.HTTPError as e:
                self._record(None, f"new connection: {type(e).__name__}: {e}")


def raw_request(port: int, sock: Optional[socket.socket] = None) -> tuple[socket.socket, str]:
    """GET /health over a raw (keep-alive) socket; returns it and X-Worker."""
    if sock is None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "x-worker":
            return sock, value.strip()
    raise AssertionError(head)
