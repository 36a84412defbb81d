"""CORS in front of the routes: listed origins, unlisted ones, preflight."""

from __future__ import annotations

from typing import Any

from crackershop.app.cors import Cors, CorsResource
from tests.unit.app.harness import Harness

LISTED = "https://shop.example"


def harness(origins: tuple[str, ...] = (LISTED,)) -> Harness:
    return Harness(wrap=lambda r: CorsResource(r, Cors(origins)))


def raw(h: Harness, method: str, path: str, headers: dict[str, str]) -> Any:
    results: list = []
    d = h.treq.request(method, "http://shop.test" + path, headers=headers)
    d.addCallback(lambda r: h.treq.content(r).addCallback(lambda c: results.append((r, c))))
    h.treq.flush()
    return results[0]


def test_listed_origin_gets_cors_headers() -> None:
    """A listed origin is echoed with credentials allowed and Vary: Origin."""
    code, _, headers = harness().request("GET", "/api", headers={"Origin": LISTED})
    assert code == 200
    assert headers.getRawHeaders("access-control-allow-origin") == [LISTED]
    assert headers.getRawHeaders("access-control-allow-credentials") == ["true"]
    assert "Origin" in headers.getRawHeaders("vary")[0]
    assert "RateLimit-Remaining" in headers.getRawHeaders("access-control-expose-headers")[0]


def test_unlisted_origin_gets_none() -> None:
    """An origin not on the list gets no Access-Control-* header at all."""
    code, _, headers = harness().request("GET", "/api", headers={"Origin": "https://evil.test"})
    assert code == 200
    assert not [n for n, _ in headers.getAllRawHeaders() if n.lower().startswith(b"access-")]


def test_cors_headers_on_errors() -> None:
    """A 404 to a listed origin still carries the CORS headers."""
    code, body, headers = harness().request("GET", "/nowhere", headers={"Origin": LISTED})
    assert code == 404 and body["code"] == "not_found"
    assert headers.getRawHeaders("access-control-allow-origin") == [LISTED]


def test_preflight_for_any_path() -> None:
    """OPTIONS to any path is a 204 with methods, headers and max-age for a listed origin."""
    h = harness()
    response, content = raw(
        h,
        "OPTIONS",
        "/api/v1/products/123",
        {"Origin": LISTED, "Access-Control-Request-Method": "DELETE"},
    )
    assert response.code == 204 and content == b""
    headers = response.headers
    assert headers.getRawHeaders("access-control-allow-origin") == [LISTED]
    assert "DELETE" in headers.getRawHeaders("access-control-allow-methods")[0]
    assert "Authorization" in headers.getRawHeaders("access-control-allow-headers")[0]
    assert headers.getRawHeaders("access-control-max-age") == ["600"]


def test_preflight_from_unlisted_origin_allows_nothing() -> None:
    """A preflight from an unlisted origin is answered without any CORS grant."""
    response, _ = raw(
        harness(),
        "OPTIONS",
        "/api",
        {"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert response.code == 204
    assert response.headers.getRawHeaders("access-control-allow-origin") is None
    assert response.headers.getRawHeaders("access-control-allow-methods") is None


def test_wildcard_echoes_any_origin() -> None:
    """With * (development only) any origin is echoed, never the literal *."""
    _, _, headers = harness(("*",)).request("GET", "/api", headers={"Origin": "http://x.test"})
    assert headers.getRawHeaders("access-control-allow-origin") == ["http://x.test"]
    assert not Cors(["*"]).allows(b"null")


def test_cors_headers_on_early_413() -> None:
    """The 413 written before routing still carries CORS headers for a listed origin."""
    from twisted.internet.testing import StringTransport
    from twisted.web.resource import Resource

    from crackershop.site import ShopSite

    site = ShopSite(Resource(), 100, timeout=60, cors=Cors([LISTED]))
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(
        b"POST /api HTTP/1.1\r\nHost: x\r\nOrigin: " + LISTED.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    )
    out = transport.value()
    assert out.startswith(b"HTTP/1.1 413 ")
    assert b"Access-Control-Allow-Origin: " + LISTED.encode() + b"\r\n" in out
