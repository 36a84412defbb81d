"""A web shop in a real browser: a page the test serves on another origin
calls the real server from headless Chromium, and a page on an origin that
is not allowed is refused by the browser."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.support import Process, Server, bearer, make_admin, register, wait_until

# Headless, with nothing that reaches beyond 127.0.0.1 (no sync, updates,
# field trials or QUIC) and nothing kept between runs; the console goes to
# the log, where the browser says why it refused a request.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--enable-logging=stderr",
    "--v=0",
)
REPORT_DEADLINE = 60.0

# The page a web shop would be: everything it learns it reads through fetch,
# as any script on its origin could; it reports what it saw to its own
# server and then moves on to the next page, if any.
PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>shop</title>
<script>
function seen(response) {
  return {
    status: response.status,
    requestId: response.headers.get("X-Request-ID"),
    remaining: response.headers.get("RateLimit-Remaining"),
    limit: response.headers.get("RateLimit-Limit"),
    replayed: response.headers.get("Idempotent-Replayed"),
  };
}

async function shop(c) {
  const result = {page: "allowed"};
  try {
    const login = await fetch(c.api + "/api/v1/auth/login", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: c.email, password: c.password}),
    });
    const session = await login.json();
    result.login = seen(login);
    const order = {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Authorization": "Bearer " + session.token,
        "Idempotency-Key": c.key,
      },
      body: JSON.stringify(c.order),
    };
    for (const name of ["first", "second"]) {
      const response = await fetch(c.api + "/api/v1/orders", order);
      const body = await response.json();
      result[name] = {...seen(response), id: body.data && body.data._id};
    }
  } catch (e) {
    result.error = e.name + ": " + e.message;
  }
  return result;
}

async function refused(c) {
  const result = {page: "disallowed"};
  try {
    const response = await fetch(c.api + "/api");
    result.read = await response.text();
  } catch (e) {
    result.readError = e.name + ": " + e.message;
  }
  try {
    const response = await fetch(c.api + "/api/v1/auth/login", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: c.email, password: c.password}),
    });
    result.login = await response.text();
  } catch (e) {
    result.loginError = e.name + ": " + e.message;
  }
  return result;
}

(async () => {
  const c = await (await fetch("/config.json")).json();
  const result = c.role === "allowed" ? await shop(c) : await refused(c);
  await fetch("/report", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(result),
  });
  if (c.next) location.href = c.next;
})();
</script>
"""


class PageServer:
    """The shop's own origin: serves PAGE and its config, takes the report."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.reports: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/":
                    self._send(PAGE, "text/html; charset=utf-8")
                elif self.path == "/config.json":
                    self._send(json.dumps(owner.config).encode(), "application/json")
                else:
                    self._send(b"not here", "text/plain", 404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != "/report" or length > 1_000_000:
                    self._send(b"no", "text/plain", 404)
                    return
                owner.reports.append(json.loads(self.rfile.read(length)))
                self._send(b"{}", "application/json")

            def _send(self, body: bytes, kind: str, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def stop(browser: Process) -> None:
    """Chromium by its pid, then any of its helpers that outlived it (its
    own session, so its process group is its pid)."""
    browser.stop(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(browser.pid, signal.SIGKILL)


def chromium_binary() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def pages() -> Iterator[tuple[PageServer, PageServer]]:
    """Two page origins: the shop's (allowed) and a stranger's (not allowed)."""
    allowed, stranger = PageServer(), PageServer()
    yield allowed, stranger
    allowed.stop()
    stranger.stop()


@pytest.fixture(scope="module")
def shop_server(
    tmp_path_factory: pytest.TempPathFactory, pages: tuple[PageServer, PageServer]
) -> Iterator[Server]:
    """The real server, allowing the shop page's origin only."""
    allowed, _ = pages
    server = Server(tmp_path_factory.mktemp("browser"), {"ALLOWED_ORIGINS": allowed.origin})
    yield server
    assert server.stop() == 0, server.output()[-3000:]


def test_web_shop_from_headless_chromium(
    shop_server: Server, pages: tuple[PageServer, PageServer], tmp_path: Path
) -> None:
    """From an allowed origin Chromium logs in, places an order with an
    Idempotency-Key twice (one order; the second answer reads
    Idempotent-Replayed: true) and reads X-Request-ID and RateLimit-Remaining;
    from an origin not allowed every read fails with a CORS error."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    allowed, stranger = pages
    admin = make_admin(shop_server, "browser-admin@shop.test", "admin-password-1")
    email, password = f"web-{uuid.uuid4().hex[:8]}@example.com", "password123"
    with shop_server.client() as c:
        register(c, email, password)
        made = c.post("/api/v1/categories", json={"name": "Sky shots"}, headers=bearer(admin))
        assert made.status_code == 201, made.text
        product = c.post(
            "/api/v1/products",
            json={
                "name": "Sky King 30 shots",
                "category": made.json()["data"]["_id"],
                "price": 950,
                "quantity": 10,
            },
            headers=bearer(admin),
        )
        assert product.status_code == 201, product.text
    product_id = product.json()["data"]["_id"]
    key = f"web-order-{uuid.uuid4().hex}"
    common = {"api": shop_server.url, "email": email, "password": password}
    allowed.config = {
        **common,
        "role": "allowed",
        "key": key,
        "order": {
            "orderItems": [{"product": product_id, "qty": 2}],
            "shippingAddress": "12 Car Street, Sivakasi, Tamil Nadu - 626123",
            "paymentMethod": "COD",
        },
        "next": stranger.origin + "/",
    }
    stranger.config = {**common, "role": "disallowed"}

    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    browser = Process(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", allowed.origin + "/"],
        {**os.environ, "HOME": str(tmp_path)},
        tmp_path,
        tmp_path / "chromium.log",
    )
    try:

        def reported() -> bool:
            if browser.proc.poll() is not None and not allowed.reports:
                pytest.skip(
                    "Chromium could not start here (exit status "
                    f"{browser.proc.returncode}): {browser.output()[-1500:]}"
                )
            if browser.proc.poll() is not None and not stranger.reports:
                raise AssertionError(f"Chromium exited mid-way: {browser.output()[-1500:]}")
            return bool(allowed.reports and stranger.reports)

        wait_until(reported, REPORT_DEADLINE, "both pages to report from Chromium")
    finally:
        stop(browser)
    log = browser.output()

    shop = allowed.reports[0]
    assert "error" not in shop, shop
    assert shop["login"]["status"] == 200
    first, second = shop["first"], shop["second"]
    assert first["status"] == 201 and second["status"] == 201, shop
    assert first["id"] and second["id"] == first["id"]
    assert first["replayed"] is None and second["replayed"] == "true"
    ids = [answer["requestId"] for answer in (shop["login"], first, second)]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,64}", i or "") for i in ids), ids
    assert len(set(ids)) == 3
    for answer in (shop["login"], first, second):
        assert answer["remaining"] is not None and answer["remaining"].isdigit(), answer
        assert int(answer["remaining"]) < int(answer["limit"])
    with shop_server.client() as c:
        session = c.post("/api/v1/auth/login", json={"email": email, "password": password})
        mine = c.get("/api/v1/orders/myorders", headers=bearer(session.json()["token"]))
    assert [order["_id"] for order in mine.json()["data"]] == [first["id"]]

    refused = stranger.reports[0]
    assert "read" not in refused and "login" not in refused, refused
    assert refused["readError"].startswith("TypeError"), refused
    assert refused["loginError"].startswith("TypeError"), refused
    # what the browser says on its console: the server answered, but CORS
    # did not let this origin read the answer nor send the login
    blocked = re.findall(
        r"Access to fetch at '([^']+)' from origin '([^']+)' has been blocked by CORS policy",
        log,
    )
    assert sorted(blocked) == [
        (shop_server.url + "/api", stranger.origin),
        (shop_server.url + "/api/v1/auth/login", stranger.origin),
    ], log[-3000:]
