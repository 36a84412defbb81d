"""The rate-limit guard through the app: which limiter applies where (the
routes' own metadata), the headers, the 429 body, and the auth limiter
counting failures only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from crackershop.app.google import GoogleKeys
from crackershop.app.routing import Route
from crackershop.ratelimit.clientip import ClientAddress
from crackershop.ratelimit.guard import Policies, RateLimitGuard
from crackershop.ratelimit.interfaces import Bucket, Outcome, Policy
from crackershop.ratelimit.memory import MemoryLimiter
from tests.unit.app.harness import Harness

WINDOW = 900.0
EXEMPT = {"GET /health", "GET /ready", "GET /metrics"}
# every route where a password, a reset token or a Google credential is tried
AUTH = {
    "POST /api/v1/auth/register",
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/forgotpassword",
    "POST /api/v1/auth/resetpassword",
    "PUT /api/v1/auth/change-password",
    "POST /api/v1/auth/google",
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def limited(every: int = 10, writes: int = 5, auth: int = 3, **extra: Any) -> Harness:
    holder: list[MemoryLimiter] = []

    class Lazy:
        """The limiter needs the harness's clock, made inside Harness."""

        def check(self, *args):  # type: ignore[no-untyped-def]
            return holder[0].check(*args)

    policies = Policies(
        Policy("global", every, WINDOW),
        Policy("writes", writes, WINDOW),
        Policy("auth", auth, WINDOW),
    )
    guard = RateLimitGuard(Lazy(), policies, ClientAddress())  # type: ignore[arg-type]
    h = Harness(guards=[guard], **extra)
    holder.append(MemoryLimiter(h.clock))
    return h


class Recording:
    """A limiter that allows everything and notes which limiters each check named."""

    def __init__(self) -> None:
        self.checks: list[tuple[str, ...]] = []

    def check(self, key: str, policies: Sequence[Policy], cost: int) -> Any:
        if cost > 0:
            self.checks.append(tuple(p.name for p in policies))
        return succeed(Outcome(True, tuple(Bucket(p, p.limit, 0, 0) for p in policies)))


def expected_limiters(route: Route) -> tuple[str, ...]:
    name = f"{route.method} {route.path}"
    if name in EXEMPT:
        return ()
    names = ["global"]
    if route.method in WRITES:
        names.append("writes")
    if name in AUTH:
        names.append("auth")
    return tuple(names)


def test_every_route_has_its_rate_class() -> None:
    """Each route of the table is counted by exactly the limiters of its class,
    as the guard applies them to a request on that route."""
    recording = Recording()
    policies = Policies(
        Policy("global", 10, WINDOW), Policy("writes", 5, WINDOW), Policy("auth", 3, WINDOW)
    )
    h = Harness(guards=[RateLimitGuard(recording, policies, ClientAddress())])  # type: ignore[arg-type]
    routes = h.app.router.routes
    names = {f"{r.method} {r.path}" for r in routes}
    assert names >= EXEMPT | AUTH  # the lists above name real routes
    assert len(routes) > 60
    for route in routes:
        path = route.path.replace("{id}", "6" * 24).replace("{name}", "none.png")
        recording.checks.clear()
        body = {} if route.method in WRITES else None
        h.treq.request(route.method, "http://shop.test" + path, json=body)
        h.treq.flush()
        expected = expected_limiters(route)
        assert route.limiters == expected, route.path
        assert recording.checks == ([expected] if expected else []), f"{route.method} {path}"


def test_unknown_rate_class_is_refused() -> None:
    """A route declared with a rate class that does not exist fails at start-up."""

    async def handler(call: Any) -> Any:
        raise AssertionError("never called")

    h = Harness()
    with pytest.raises(ValueError, match="rate class"):
        h.app.router.add(Route("GET", "/x", handler, "x", rate="none"))


def test_headers_on_every_limited_response() -> None:
    """Each answer carries RateLimit-* and X-RateLimit-* counting down."""
    h = limited()
    for expected in (9, 8):
        code, _, headers = h.request("GET", "/api")
        assert code == 200
        assert headers.getRawHeaders("ratelimit-limit") == ["10"]
        assert headers.getRawHeaders("ratelimit-remaining") == [str(expected)]
        assert headers.getRawHeaders("x-ratelimit-remaining") == [str(expected)]
        assert headers.getRawHeaders("ratelimit-reset") == [str(90 * (10 - expected))]
        assert headers.getRawHeaders("x-ratelimit-reset") == headers.getRawHeaders(
            "ratelimit-reset"
        )


def test_429_body_headers_and_honest_retry_after() -> None:
    """Past the limit: 429, the contract's body, Retry-After; after it, allowed again."""
    h = limited(every=3)
    for _ in range(3):
        assert h.request("GET", "/api")[0] == 200
    code, body, headers = h.request("GET", "/api")
    assert code == 429
    assert body == {
        "success": False,
        "error": "Too many requests, please try again later",
        "code": "rate_limited",
    }
    retry = int(headers.getRawHeaders("retry-after")[0])
    assert retry == 300
    assert headers.getRawHeaders("ratelimit-remaining") == ["0"]
    h.clock.advance(retry - 1)
    assert h.request("GET", "/api")[0] == 429
    h.clock.advance(1)
    assert h.request("GET", "/api")[0] == 200


def test_health_and_ready_are_exempt() -> None:
    """Probes are never limited and carry no rate-limit headers."""
    h = limited(every=1)
    assert h.request("GET", "/api")[0] == 200
    assert h.request("GET", "/api")[0] == 429
    for _ in range(5):
        code, _, headers = h.request("GET", "/health")
        assert code == 200 and headers.getRawHeaders("ratelimit-limit") is None
        assert h.request("GET", "/ready")[0] == 200


def test_writes_limiter_applies_to_writes_only() -> None:
    """POSTs use up the writes bucket; GETs still pass when it is empty."""
    h = limited(every=100, writes=2)
    body = {"address": "x"}
    for _ in range(2):
        code, _, headers = h.request("POST", "/api/v1/auth/addresses", body)
        assert code == 401
    code, _, headers = h.request("POST", "/api/v1/auth/addresses", body)
    assert code == 429 and headers.getRawHeaders("ratelimit-limit") == ["2"]
    code, _, headers = h.request("GET", "/api")
    assert code == 200 and headers.getRawHeaders("ratelimit-limit") == ["100"]


def test_auth_limiter_counts_failed_logins_only() -> None:
    """Successful logins give their auth token back; failed ones use it up."""
    h = limited(every=100, writes=100, auth=3)
    h.register("asha@shop.test")  # a success: refunded
    good = {"email": "asha@shop.test", "password": "password123"}
    bad = {"email": "asha@shop.test", "password": "wrong-password"}
    for _ in range(6):
        assert h.request("POST", "/api/v1/auth/login", good)[0] == 200
    for _ in range(3):
        assert h.request("POST", "/api/v1/auth/login", bad)[0] == 401
    code, body, _ = h.request("POST", "/api/v1/auth/login", bad)
    assert code == 429 and body["code"] == "rate_limited"
    # once failures have used it up, even the right password waits
    assert h.request("POST", "/api/v1/auth/login", good)[0] == 429
    h.clock.advance(WINDOW / 3)
    assert h.request("POST", "/api/v1/auth/login", good)[0] == 200
    assert h.request("POST", "/api/v1/auth/login", good)[0] == 200


def test_auth_limiter_ignores_other_routes() -> None:
    """Failures on routes outside the auth class cost no auth token."""
    h = limited(every=100, writes=100, auth=1)
    for _ in range(3):
        assert h.request("GET", "/api/v1/auth/me")[0] == 401
    assert h.request("POST", "/api/v1/auth/login", {"email": "a@b.test", "password": "x"})[0] in (
        400,
        401,
    )
    assert h.request("POST", "/api/v1/auth/login", {"email": "a@b.test", "password": "x"})[0] == 429


def test_google_sign_in_failures_use_up_the_auth_limit() -> None:
    """Failed Google sign-ins are counted by the auth limiter like failed logins."""

    def fetch(url: str) -> Any:
        raise AssertionError("a malformed token never needs Google's keys")

    keys = GoogleKeys("https://keys.test/certs", fetch, Clock())
    h = limited(every=100, writes=100, auth=3, google_client_id="shop", google_keys=keys)
    for _ in range(3):
        code, body, _ = h.request("POST", "/api/v1/auth/google", {"idToken": "not-a-token"})
        assert code == 401, body
    code, body, headers = h.request("POST", "/api/v1/auth/google", {"idToken": "not-a-token"})
    assert code == 429 and headers.getRawHeaders("ratelimit-limit") == ["3"]
    # the same bucket as passwords: a login is now held back too
    login = {"email": "a@b.test", "password": "password123"}
    assert h.request("POST", "/api/v1/auth/login", login)[0] == 429


def test_auth_class_follows_the_route_not_the_spelling() -> None:
    """A login spelt with a trailing slash or a query string reaches the login
    route and is counted by the auth limiter like any login."""
    h = limited(every=100, writes=100, auth=3)
    wrong = {"email": "a@b.test", "password": "wrong-password"}
    for path in ("/api/v1/auth/login/", "/api/v1/auth/login?via=app", "/api/v1/auth/login"):
        code, _, headers = h.request("POST", path, wrong)
        assert code == 401 and headers.getRawHeaders("ratelimit-limit") == ["3"], path
    assert h.request("POST", "/api/v1/auth/login/", wrong)[0] == 429
