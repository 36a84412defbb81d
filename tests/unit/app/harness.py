"""Drive the Klein app in memory: StubTreq over the real resource, the
in-memory store, a Clock, and a synchronous stand-in for the thread pool."""

from __future__ import annotations

import json
from typing import Any, Optional

from treq.testing import StubTreq
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from crackershop.app import Dependencies, build_app
from crackershop.app.conformance import Conformance
from crackershop.app.routing import resource
from crackershop.app.security import Passwords, Tokens
from crackershop.store.catalogue import CachedCatalogue
from crackershop.store.memory import MemoryStore

SECRET = "unit-test-secret-0123456789abcdef0123"
START = 1_790_000_000.0


def run_now(f: Any, *args: Any) -> Any:
    return succeed(f(*args))


class Sent:
    def __init__(self) -> None:
        self.messages: list = []

    def send(self, to: str, subject: str, text: str) -> None:
        self.messages.append((to, subject, text))


class Harness:
    def __init__(
        self,
        guards: Any = (),
        wrap: Any = None,
        catalogue_ttl: Optional[float] = None,
        **extra: Any,
    ) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.store = MemoryStore(self.clock)
        if catalogue_ttl is not None:
            extra["catalogue"] = CachedCatalogue(self.store, self.clock, catalogue_ttl)
        self.tokens = Tokens(SECRET, 3600, self.clock)
        self.mail = Sent()
        self.app_passwords = Passwords(4, run_now)
        deps = Dependencies(
            store=self.store,
            tokens=self.tokens,
            passwords=self.app_passwords,
            mailer=self.mail,  # type: ignore[arg-type]
            clock=self.clock,
            guards=guards,
            **extra,
        )
        self.app = build_app(deps)
        self._conformance: Optional[Conformance] = None
        root = resource(self.app)
        self.treq = StubTreq(wrap(root) if wrap else root)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: Optional[str] = None,
        raw: Optional[bytes] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> tuple[int, dict[str, Any], Any]:
        sent = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if token:
            sent["Authorization"] = f"Bearer {token}"
        results: list = []
        d = self.treq.request(method, "http://shop.test" + path, headers=sent, data=data)
        d.addCallback(lambda r: self.treq.content(r).addCallback(lambda c: results.append((r, c))))
        d.addErrback(results.append)
        self.treq.flush()
        assert results, "request did not complete"
        if not isinstance(results[0], tuple):
            results[0].raiseException()
        response, content = results[0]
        kind = response.headers.getRawHeaders("content-type")
        assert kind == ["application/json; charset=utf-8"], content
        self.conform(method, path, response.code, kind[0], content)
        return response.code, json.loads(content), response.headers

    def conform(self, method: str, path: str, status: int, kind: str, content: bytes) -> None:
        """Every answer is what its route declares (crackershop.app.conformance)."""
        routes = self.app.router.routes
        if self._conformance is None or len(self._conformance.routes) != len(routes):
            self._conformance = Conformance(routes)
        self._conformance.check(method, path, status, kind, content)

    def register(self, email: str, password: str = "password123", name: str = "Asha") -> str:
        code, body, _ = self.request(
            "POST", "/api/v1/auth/register", {"name": name, "email": email, "password": password}
        )
        assert code == 201, body
        token: str = body["token"]
        return token

    def admin(self, email: str = "admin@shop.test") -> str:
        token = self.register(email)
        _code, body, _ = self.request("GET", "/api/v1/auth/me", token=token)
        user_id = body["data"]["_id"]
        from bson import ObjectId

        self.store.users.docs[ObjectId(user_id)]["role"] = "admin"
        return token
