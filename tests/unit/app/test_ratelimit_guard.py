"""The rate-limit guard through the app: which limiter applies where, the
headers, the 429 body, and the auth limiter counting failures only."""

from __future__ import annotations

from crackershop.ratelimit.clientip import ClientAddress
from crackershop.ratelimit.guard import Policies, RateLimitGuard
from crackershop.ratelimit.interfaces import Policy
from crackershop.ratelimit.memory import MemoryLimiter
from tests.unit.app.harness import Harness

WINDOW = 900.0


def limited(every: int = 10, writes: int = 5, auth: int = 3) -> Harness:
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
    h = Harness(guards=[RateLimitGuard(Lazy(), policies, ClientAddress())])  # type: ignore[arg-type]
    holder.append(MemoryLimiter(h.clock))
    return h


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
    body = {"email": "x@shop.test"}
    for _ in range(2):
        code, _, headers = h.request("POST", "/api/v1/auth/resetpassword", body)
        assert code != 429
    code, _, headers = h.request("POST", "/api/v1/auth/resetpassword", body)
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
    """Failures on routes outside register/login/forgotpassword cost no auth token."""
    h = limited(every=100, writes=100, auth=1)
    for _ in range(3):
        assert h.request("GET", "/api/v1/auth/me")[0] == 401
    assert h.request("POST", "/api/v1/auth/login", {"email": "a@b.test", "password": "x"})[0] in (
        400,
        401,
    )
    assert h.request("POST", "/api/v1/auth/login", {"email": "a@b.test", "password": "x"})[0] == 429
