"""The in-memory store's database going away, for the unknown-outcome paths
of placing an order."""

from __future__ import annotations

from typing import Any

from crackershop.errors import DatabaseUnavailable
from crackershop.store.memory import MemoryStore


class Outage:
    """While ``down``, every orders, stock and idempotency call fails with
    DatabaseUnavailable. ``fail("orders.transition", landed=True)`` makes the
    next such call fail: applied first (the answer was lost) or not, and the
    database stays away afterwards if ``stay_down``."""

    def __init__(self, store: MemoryStore) -> None:
        self.down = False
        self.planned: dict[str, tuple[bool, bool]] = {}
        self.calls: list[str] = []
        for part in ("orders", "stock", "idempotency"):
            setattr(store, part, _Flaky(getattr(store, part), part, self))

    def fail(self, call: str, landed: bool, stay_down: bool = False) -> None:
        self.planned[call] = (landed, stay_down)


class _Flaky:
    def __init__(self, inner: Any, part: str, outage: Outage) -> None:
        self._inner = inner
        self._part = part
        self._outage = outage

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        call_name = f"{self._part}.{name}"
        outage = self._outage

        async def call(*args: Any, **kwargs: Any) -> Any:
            outage.calls.append(call_name)
            if outage.down:
                raise DatabaseUnavailable()
            planned = outage.planned.pop(call_name, None)
            if planned is None:
                return await attr(*args, **kwargs)
            landed, stay_down = planned
            if landed:
                await attr(*args, **kwargs)
            outage.down = stay_down
            raise DatabaseUnavailable()

        return call
