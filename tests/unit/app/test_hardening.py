"""Hostile clients at the HTTP edge and in auth: header limits, slow
requests, handler deadlines, HSTS, the per-worker user cache, token
leeway, login timing by bcrypt calls, and admin routes from the table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web import pages
from zope.interface import implementer

from crackershop.app.routing import Route
from crackershop.app.security import InvalidToken, Passwords, Tokens
from crackershop.server.connection import ConnectionLimits
from crackershop.server.site import ShopSite
from tests.unit.app.harness import SECRET, Harness, run_now


def _site(hsts_max_age: int = 0, **limits: Any) -> tuple[ShopSite, MemoryReactorClock]:
    reactor = MemoryReactorClock()
    site = ShopSite(
        pages.notFound(),
        max_body_size=1000,
        timeout=60,
        reactor=reactor,
        limits=ConnectionLimits(**limits),
        hsts_max_age=hsts_max_age,
    )
    return site, reactor


@implementer(ISSLTransport)
class _TLSTransport(StringTransport):
    def setTcpNoDelay(self, enabled: bool) -> None:
        return None


def _connect(site: ShopSite, secure: bool = False) -> tuple[Any, StringTransport]:
    channel = site.buildProtocol(None)
    transport = _TLSTransport() if secure else StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def _answer(transport: StringTransport) -> tuple[bytes, dict[str, Any]]:
    head, _, body = transport.value().partition(b"\r\n\r\n")
    return head, json.loads(body)


def test_too_many_headers_is_a_json_431() -> None:
    """More header lines than MAX_HEADERS: a JSON 431 and the connection closes."""
    site, _ = _site(max_headers=10)
    channel, transport = _connect(site)
    lines = b"".join(b"X-%d: a\r\n" % i for i in range(11))
    channel.dataReceived(b"GET /api HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    head, body = _answer(transport)
    assert head.startswith(b"HTTP/1.1 431 ")
    assert body["code"] == "headers_too_large"
    assert transport.disconnecting


@pytest.mark.parametrize("line", [b"X-Big: " + b"a" * 3000, b"X-A: 1\r\nX-B: " + b"b" * 1500])
def test_oversized_head_is_a_json_431(line: bytes) -> None:
    """A request head over MAX_HEADERS_SIZE (one huge line or in total) is a JSON 431."""
    site, _ = _site(max_headers_size=2048)
    channel, transport = _connect(site)
    channel.dataReceived(
        b"GET /api HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n" + b"X: " + b"c" * 600 + b"\r\n\r\n"
    )
    head, body = _answer(transport)
    assert head.startswith(b"HTTP/1.1 431 ")
    assert body["success"] is False
    assert transport.disconnecting


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /api HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n: x\r\n\r\n",
    ],
)
def test_malformed_request_head_is_a_json_400(raw: bytes) -> None:
    """Twisted's bare 400 for a malformed head is replaced by the JSON envelope."""
    site, _ = _site()
    channel, transport = _connect(site)
    channel.dataReceived(raw)
    head, body = _answer(transport)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"application/json" in head
    assert body["code"] == "bad_request"


def test_a_request_that_arrives_too_slowly_is_closed() -> None:
    """A request not whole within REQUEST_TIMEOUT gets a 408 and is closed,
    however often the client trickles a byte to keep the connection busy."""
    site, reactor = _site(arrival_timeout=10.0)
    channel, transport = _connect(site)
    channel.dataReceived(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n")
    for _ in range(9):
        reactor.advance(1)
        channel.dataReceived(b"X: y\r\n")
    assert transport.value() == b""
    reactor.advance(1)
    head, body = _answer(transport)
    assert head.startswith(b"HTTP/1.1 408 ")
    assert body["code"] == "request_timeout"
    assert transport.disconnecting


def test_a_trickled_request_line_is_cut_from_its_first_byte() -> None:
    """A request line trickled a byte at a time gets a JSON 408 REQUEST_TIMEOUT after its
    first byte, though each byte restarts Twisted's idle timeout."""
    site, reactor = _site(arrival_timeout=10.0)
    channel, transport = _connect(site)
    for byte in b"GET /api/v1/products HTTP/1.1"[:10]:
        channel.dataReceived(bytes([byte]))
        reactor.advance(1)
    head, body = _answer(transport)
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"application/json" in head
    assert body["code"] == "request_timeout"
    assert transport.disconnecting


def test_each_request_on_a_connection_gets_its_own_deadline() -> None:
    """On a kept-alive connection the deadline starts again with the next request's
    first byte, not when the connection opened."""
    site, reactor = _site(arrival_timeout=10.0)
    channel, transport = _connect(site)
    channel.dataReceived(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 404 ")
    transport.clear()
    reactor.advance(30)  # idle between requests: the idle timeout's business
    channel.dataReceived(b"GET /b HTTP/1.1\r\n")
    reactor.advance(9)
    assert transport.value() == b""
    channel.dataReceived(b"Host: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 404 ")
    reactor.advance(10)
    assert not transport.disconnecting


def test_a_request_that_arrives_in_time_keeps_no_timer() -> None:
    """Once the request has arrived whole its arrival deadline is gone."""
    site, reactor = _site(arrival_timeout=10.0)
    channel, transport = _connect(site)
    channel.dataReceived(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 404 ")
    assert not [c for c in reactor.getDelayedCalls() if c.func.__name__ == "_too_slow"]


def test_hsts_only_over_tls_and_when_configured() -> None:
    """Strict-Transport-Security goes on HTTPS responses when HSTS_MAX_AGE is set."""
    for secure, max_age, expected in ((True, 600, True), (False, 600, False), (True, 0, False)):
        site, _ = _site(hsts_max_age=max_age)
        channel, transport = _connect(site, secure=secure)
        channel.dataReceived(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        head, _ = _answer(transport)
        assert (b"Strict-Transport-Security: max-age=600" in head) is expected


def test_a_handler_past_the_deadline_is_503_and_cancelled() -> None:
    """A route still working after REQUEST_TIMEOUT answers 503 and its work is cancelled."""
    h = Harness(request_timeout=5.0)
    cancelled: list[bool] = []

    async def stuck(call: Any) -> Any:
        d: Deferred[None] = Deferred(lambda _: cancelled.append(True))
        await d

    h.app.router.add(Route("GET", "/stuck", stuck, "never answers"))  # type: ignore[attr-defined]
    results: list[Any] = []
    d = h.treq.get("http://shop.test/stuck")
    d.addCallback(lambda r: h.treq.content(r).addCallback(lambda c: results.append((r.code, c))))
    h.treq.flush()
    assert results == []
    h.clock.advance(5)
    h.treq.flush()
    assert cancelled == [True]
    code, content = results[0]
    assert code == 503
    assert json.loads(content)["code"] == "service_unavailable"


def _user_id(h: Harness, token: str) -> ObjectId:
    _, me, _ = h.request("GET", "/api/v1/auth/me", token=token)
    return ObjectId(me["data"]["_id"])


def test_user_cache_bound_for_changes_made_elsewhere() -> None:
    """A user blocked by another worker (straight in the database) is refused
    once AUTH_CACHE_TTL has passed, and not a moment later."""
    h = Harness(auth_cache_ttl=2.0)
    token = h.register("c@example.com")
    uid = _user_id(h, token)
    h.store.users.docs[uid]["status"] = "Blocked"  # another worker's write
    h.clock.advance(1.9)
    assert h.request("GET", "/api/v1/auth/me", token=token)[0] == 200
    h.clock.advance(0.2)
    assert h.request("GET", "/api/v1/auth/me", token=token)[0] == 403


def test_user_cache_forgets_changes_made_here() -> None:
    """Blocking a user, or their password change, through this worker holds
    at once even with the cache on."""
    h = Harness(auth_cache_ttl=60.0)
    admin = h.admin()
    h.clock.advance(61)  # the promotion above was made straight in the store
    token = h.register("c@example.com")
    uid = _user_id(h, token)
    code, _, _ = h.request("PUT", f"/api/v1/users/{uid}", {"status": "Blocked"}, token=admin)
    assert code == 200
    assert h.request("GET", "/api/v1/auth/me", token=token)[0] == 403
    changer = h.register("d@example.com")
    _, login, _ = h.request(
        "POST", "/api/v1/auth/login", {"email": "d@example.com", "password": "password123"}
    )
    other = login["token"]
    _user_id(h, other)
    code, _, _ = h.request(
        "PUT",
        "/api/v1/auth/change-password",
        {"currentPassword": "password123", "newPassword": "password456"},
        token=changer,
    )
    assert code == 200
    assert h.request("GET", "/api/v1/auth/me", token=other)[0] == 401


def test_jwt_leeway_is_configurable() -> None:
    """A token expired by less than the leeway passes; by more, it fails."""
    import jwt
    from twisted.internet.task import Clock

    clock = Clock()
    clock.advance(1_800_000_000)
    now = int(clock.seconds())
    token = jwt.encode({"id": "a" * 24, "iat": now - 65, "exp": now - 5}, SECRET, algorithm="HS256")
    assert Tokens(SECRET, 60, clock, leeway=10).verify(token)["id"] == "a" * 24
    with pytest.raises(InvalidToken):
        Tokens(SECRET, 60, clock, leeway=2).verify(token)


def test_login_runs_bcrypt_once_whether_or_not_the_email_exists() -> None:
    """An unknown email costs the same bcrypt work as a wrong password."""
    calls: list[str] = []

    def counting(f: Any, *args: Any) -> Any:
        calls.append(f.__name__)
        return run_now(f, *args)

    h = Harness()
    h.register("known@example.com")
    h.app_passwords._run = counting  # the runner the app was built with
    for email in ("known@example.com", "nobody@example.com"):
        calls.clear()
        code, body, _ = h.request(
            "POST", "/api/v1/auth/login", {"email": email, "password": "wrong-password"}
        )
        assert code == 401 and body["error"] == "Invalid email or password"
        assert calls == ["checkpw"], (email, calls)


def test_bcrypt_cost_is_configurable() -> None:
    """New hashes use the configured cost."""
    from twisted.internet.defer import ensureDeferred
    from twisted.trial.unittest import SynchronousTestCase

    hashed = SynchronousTestCase().successResultOf(ensureDeferred(Passwords(5, run_now).hash("pw")))
    assert hashed.startswith("$2b$05$")


def test_every_admin_route_in_the_table_refuses_a_customer() -> None:
    """Each route the table marks admin answers 403 to a customer and 401 to nobody."""
    h = Harness()
    customer = h.register("c@example.com")
    routes = [r for r in h.app.router.routes if r.access == "admin"]  # type: ignore[attr-defined]
    assert len(routes) >= 20
    for route in routes:
        path = route.path.replace("{id}", "0" * 24)
        assert "{" not in path, path
        code, body, _ = h.request(route.method, path, {}, token=customer)
        assert (code, body["code"]) == (403, "forbidden"), route
        assert h.request(route.method, path, {})[0] == 401, route


def test_null_is_refused_where_a_record_keeps_a_value() -> None:
    """A category's status or a user's name cannot be set to null (it would be
    stored); a description can, and a scheme's reads as ""."""
    h = Harness()
    admin = h.admin()
    code, body, _ = h.request("POST", "/api/v1/categories", {"name": "Rockets"}, admin)
    assert code == 201
    url = f"/api/v1/categories/{body['data']['_id']}"
    code, body, _ = h.request("PUT", url, {"status": None}, admin)
    assert (code, body["details"]) == (400, {"status": "may not be null"})
    code, body, _ = h.request("PUT", "/api/v1/auth/updatedetails", {"name": None}, admin)
    assert (code, body["error"]) == (400, "Name may not be null")
    code, body, _ = h.request("PUT", url, {"description": None}, admin)
    assert code == 200 and body["data"]["description"] is None
    scheme = {"name": "Gold", "totalAmount": 1200, "installmentAmount": 100, "durationMonths": 12}
    code, body, _ = h.request("POST", "/api/v1/chit/schemes", scheme, admin)
    assert code == 201
    url = f"/api/v1/chit/schemes/{body['data']['_id']}"
    code, body, _ = h.request("PUT", url, {"description": None}, admin)
    assert code == 200 and body["data"]["description"] == ""
