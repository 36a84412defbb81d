"""/ready answers within its own deadline, whatever does not answer."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from crackershop.app.service import READY_DEADLINE, ServiceHandlers
from crackershop.errors import DatabaseUnavailable, ServiceUnavailable
from crackershop.store.memory import MemoryStore


class SilentStore(MemoryStore):
    """A database that has stopped answering: ping never completes."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.cancelled = 0

    async def ping(self) -> None:
        def cancelled(d: Deferred[None]) -> None:
            self.cancelled += 1

        await Deferred(cancelled)


class RefusingStore(MemoryStore):
    """A database that refuses at once."""

    async def ping(self) -> None:
        raise DatabaseUnavailable()


def ready(store: Any, clock: Clock, *checks: Any) -> Deferred[Any]:
    handlers = ServiceHandlers(store, clock, "development", dict, checks)
    return Deferred.fromCoroutine(handlers.ready(None))  # type: ignore[arg-type]


def test_a_silent_database_is_reported_at_the_deadline() -> None:
    """A ping that hangs gives 503 at READY_DEADLINE naming the database and why."""
    clock = Clock()
    store = SilentStore(clock)
    d = ready(store, clock)
    clock.advance(READY_DEADLINE - 0.01)
    assert not d.called
    clock.advance(0.01)
    error = d.result.value
    d.addErrback(lambda _: None)
    assert isinstance(error, ServiceUnavailable) and error.status == 503
    assert error.message == f"Not ready: mongodb did not answer within {READY_DEADLINE:g}s"
    assert error.details == {"mongodb": "unavailable"}
    assert store.cancelled == 1
    assert READY_DEADLINE < 2


def test_checks_run_at_once_and_a_refusal_answers_at_once() -> None:
    """A database that refuses answers at once; a slow Redis check does not delay it
    past the deadline, and each check is reported by name."""
    clock = Clock()
    store = RefusingStore(clock)
    slow: Deferred[tuple[str, str]] = Deferred()

    async def redis() -> tuple[str, str]:
        return await slow

    d = ready(store, clock, redis)
    assert not d.called
    clock.advance(READY_DEADLINE)
    error = d.result.value
    d.addErrback(lambda _: None)
    assert error.message == (
        f"Not ready: check 0 did not answer within {READY_DEADLINE:g}s; mongodb unavailable"
    )


def test_ready_when_everything_answers() -> None:
    """Everything answering in time is 200 with each check's state."""
    clock = Clock()

    async def redis() -> tuple[str, str]:
        return "redis", "degraded"

    d = ready(MemoryStore(clock), clock, redis)
    reply = d.result
    assert reply.body == {
        "success": True,
        "status": "ready",
        "checks": {"mongodb": "ok", "redis": "degraded"},
    }
