"""CORS in front of the routes: listed origins, unlisted ones, preflight,
and the request and response headers the features declare."""

from __future__ import annotations

import types
from typing import Any

import pytest
from twisted.internet.defer import ensureDeferred

from crackershop.app.cors import Cors, CorsResource
from crackershop.ratelimit.clientip import ClientAddress
from crackershop.ratelimit.guard import Policies, RateLimitGuard
from crackershop.ratelimit.interfaces import Policy
from crackershop.ratelimit.memory import MemoryLimiter
from crackershop.server.site import make_cors
from tests.unit.app.harness import Harness

LISTED = "https://shop.example"
ADDRESS = {"address": "12 Car Street", "district": "Sivakasi", "state": "TN", "pincode": "626123"}
# what the features the web shop uses send and read
FEATURE_REQUEST = ("Idempotency-Key", "X-Request-ID")
FEATURE_RESPONSE = (
    "Idempotent-Replayed",
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "Retry-After",
)


def harness(origins: tuple[str, ...] = (LISTED,), guards: Any = ()) -> Harness:
    return Harness(guards=guards, wrap=lambda r: CorsResource(r, make_cors(origins)))


def limited(origins: tuple[str, ...] = (LISTED,), every: int = 100) -> Harness:
    """CORS in front of an app whose requests the rate-limit guard counts."""
    holder: list[MemoryLimiter] = []

    class Lazy:
        """The limiter needs the harness's clock, made inside Harness."""

        def check(self, *args):  # type: ignore[no-untyped-def]
            return holder[0].check(*args)

    policies = Policies(
        Policy("global", every, 900), Policy("writes", 100, 900), Policy("auth", 100, 900)
    )
    h = harness(origins, [RateLimitGuard(Lazy(), policies, ClientAddress())])  # type: ignore[arg-type]
    holder.append(MemoryLimiter(h.clock))
    return h


def listed(headers: Any, name: str) -> list[str]:
    """The comma-separated values of a header, lower-cased."""
    values = headers.getRawHeaders(name) or []
    return [v.strip().lower() for value in values for v in value.split(",")]


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
    exposed = listed(headers, "access-control-expose-headers")
    assert [n for n in FEATURE_RESPONSE if n.lower() not in exposed] == []


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
    allowed = listed(headers, "access-control-allow-headers")
    for name in ("Authorization", "Content-Type", *FEATURE_REQUEST):
        assert name.lower() in allowed, name
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


def test_wildcard_is_a_wildcard_without_credentials() -> None:
    """With * (development only) the answer is the literal * and never allows credentials."""
    h = harness(("*",))
    _, _, headers = h.request("GET", "/api", headers={"Origin": "http://x.test"})
    assert headers.getRawHeaders("access-control-allow-origin") == ["*"]
    assert headers.getRawHeaders("access-control-allow-credentials") is None
    assert "x-request-id" in listed(headers, "access-control-expose-headers")
    response, _ = raw(
        h,
        "OPTIONS",
        "/api/v1/orders",
        {"Origin": "http://x.test", "Access-Control-Request-Method": "POST"},
    )
    assert response.headers.getRawHeaders("access-control-allow-origin") == ["*"]
    assert response.headers.getRawHeaders("access-control-allow-credentials") is None
    assert "idempotency-key" in listed(response.headers, "access-control-allow-headers")
    assert not Cors(["*"]).allows(b"null")


def test_headers_come_from_the_features() -> None:
    """A feature that declares a header gets it allowed and exposed with no list edited."""
    feature = types.ModuleType("feature")
    feature.REQUEST_HEADERS = ("X-Shop-Token",)  # type: ignore[attr-defined]
    feature.RESPONSE_HEADERS = ("X-Shop-Answer", "Retry-After")  # type: ignore[attr-defined]
    cors = make_cors([LISTED], [feature])
    granted = dict(cors.headers(LISTED.encode()))
    assert granted[b"Access-Control-Expose-Headers"] == b"X-Shop-Answer, Retry-After"
    assert b"X-Shop-Token" in cors.allowed_headers.split(b", ")
    # without the feature, neither is there
    bare = make_cors([LISTED], [])
    assert b"Access-Control-Expose-Headers" not in dict(bare.headers(LISTED.encode()))
    assert b"X-Shop-Token" not in bare.allowed_headers


def test_cross_origin_idempotent_order_headers_are_all_readable() -> None:
    """An allowed origin's idempotent order, replayed and then rate limited: every
    feature header on those answers is one the browser is allowed to read."""
    h = limited(every=3)  # the sign-up, the order and its replay
    token = h.register("asha@example.com")
    created: list[dict[str, Any]] = []
    ensureDeferred(
        h.store.products.create({"name": "Rocket", "price": 120, "quantity": 5, "status": "Active"})
    ).addCallback(created.append)
    body = {
        "orderItems": [{"product": str(created[0]["_id"]), "qty": 1}],
        "shippingAddress": ADDRESS,
        "paymentMethod": "COD",
    }
    sent = {"Origin": LISTED, "Idempotency-Key": "order-1"}
    answers = [h.request("POST", "/api/v1/orders", body, token, headers=sent) for _ in range(3)]
    assert [code for code, _, _ in answers] == [201, 201, 429]
    assert answers[1][1]["data"]["_id"] == answers[0][1]["data"]["_id"]
    assert answers[1][2].getRawHeaders("idempotent-replayed") == ["true"]
    assert answers[2][2].getRawHeaders("retry-after") is not None
    assert len(h.store.orders.docs) == 1
    seen = set()
    for _, _, headers in answers:
        assert headers.getRawHeaders("access-control-allow-origin") == [LISTED]
        exposed = set(listed(headers, "access-control-expose-headers"))
        for name, _ in headers.getAllRawHeaders():
            lowered = name.decode().lower()
            if lowered.startswith(("ratelimit-", "x-ratelimit-", "retry-", "idempotent-")):
                seen.add(lowered)
                assert lowered in exposed, lowered
    assert {"ratelimit-remaining", "retry-after", "idempotent-replayed"} <= seen


def test_cors_headers_on_early_413() -> None:
    """The 413 written before routing still carries CORS headers for a listed origin."""
    from twisted.internet.testing import StringTransport
    from twisted.web.resource import Resource

    from crackershop.server.site import ShopSite

    site = ShopSite(Resource(), 100, timeout=60, cors=make_cors([LISTED]))
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


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example.evil.test",
        "https://evil-shop.example",
        "http://shop.example",
        "https://shop.example:8443",
        "https://shop.example/",
        "HTTPS://SHOP.EXAMPLE",
        "null",
        "https://evil.test, https://shop.example",
    ],
)
def test_lookalike_origins_get_nothing(origin: str) -> None:
    """Only the exact listed origin is granted: other hosts, schemes, ports,
    spellings, null and lists get no CORS header, nor does their preflight."""
    h = harness()
    _, _, headers = h.request("GET", "/api", headers={"Origin": origin})
    assert not [n for n, _ in headers.getAllRawHeaders() if n.lower().startswith(b"access-")]
    response, _ = raw(
        h, "OPTIONS", "/api/v1/orders", {"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert not [
        n for n, _ in response.headers.getAllRawHeaders() if n.lower().startswith(b"access-")
    ]
