"""Google sign-in through the real server, against keys the test serves itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.google_keys import CLIENT_ID, FakeGoogle
from tests.support import Server


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogle, str]]:
    """A local stand-in for Google's JWKS endpoint on 127.0.0.1."""
    fake = FakeGoogle()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = fake.jwks()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=300")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/certs"
    httpd.shutdown()
    httpd.server_close()


def test_google_sign_in(tmp_path: Path, secantus: object, google: tuple[FakeGoogle, str]) -> None:
    """A token signed by the published key signs in; a forged one is 401."""
    fake, url = google
    server = Server(
        tmp_path,
        env={
            "MONGO_URI": f"{secantus.uri}/google_test",  # type: ignore[attr-defined]
            "GOOGLE_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CERTS_URL": url,
        },
    )
    try:
        with server.client() as c:
            r = c.post("/api/v1/auth/google", json={"idToken": fake.token()})
            assert r.status_code == 201, r.text
            me = c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['token']}"})
            assert me.json()["data"]["email"] == "ravi@gmail.com"
            forged = FakeGoogle().token()
            assert c.post("/api/v1/auth/google", json={"idToken": forged}).status_code == 401
    finally:
        assert server.stop() == 0
