"""The repair sweep: finish or undo what crashed or stalled placements and
cancellations left behind (see :mod:`crackershop.orders.placing`), at
start-up and then every repair delay, in every serving process.

Every step is a guarded update of one document, so the sweep is safe to run
at any time, from any number of processes, and alongside live placements.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from crackershop.clock import now_utc
from crackershop.errors import DatabaseStarting, ShopError
from crackershop.orders.placing import Reservations, lines
from crackershop.orders.states import HIDDEN

if TYPE_CHECKING:
    from crackershop.store.interfaces import IStore

log = Logger()


async def repair(reservations: Reservations) -> dict[str, int]:
    """One sweep; how many reservations it released, cancellations it
    restocked, records it cleared and failed placements it gave an expiry."""
    store, clock = reservations.store, reservations.clock
    counts = {"released": 0, "restocked": 0, "settled": 0}
    before = now_utc(clock) - timedelta(seconds=reservations.repair_after)
    for order in await store.orders.unfinished(before):
        if order.get("orderStatus") in HIDDEN:
            await reservations.abandon(order)
            counts["released"] += 1
        else:
            await reservations.restock(order)
            counts["restocked"] += 1
    for product in await store.stock.marked():
        product_id = product["_id"]
        for order_id in product["reservedBy"]:
            order = await store.orders.get(order_id)
            if order is None or order.get("orderStatus") not in HIDDEN:
                await store.stock.settle(product_id, order_id)  # placed: stock stays taken
                counts["settled"] += 1
            elif order["updatedAt"] < before:
                # reserved by a placement that the sweep had already abandoned
                for line_product, qty in lines(order):
                    if line_product == product_id:
                        await store.stock.unreserve(product_id, qty, order_id)
                        counts["released"] += 1
        for order_id in product["returnedBy"]:
            order = await store.orders.get(order_id)
            if order is None or order.get("stockReturned") is True:
                await store.stock.settle_restock(product_id, order_id)
                counts["settled"] += 1
    # failed placements released before they were given an expiry
    counts["expired"] = await store.orders.expire_released(reservations.expiry())
    if any(counts.values()):
        log.info(
            "order repair: {released} reservations released, {restocked} "
            "cancellations restocked, {settled} records cleared, {expired} "
            "failed placements given an expiry",
            **counts,
        )
    return counts


class RepairService(Service):
    """Sweeps once the database is connected (``connected()`` fires with the
    store), then every ``interval`` seconds, until stopped."""

    def __init__(
        self, clock: IReactorTime, interval: float, connected: Callable[[], Deferred[IStore]]
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.connected = connected
        self.reservations: Optional[Reservations] = None
        self._waiting: Optional[Deferred[Any]] = None
        self._loop: Optional[LoopingCall] = None

    def startService(self) -> None:
        super().startService()
        self._waiting = self.connected().addCallbacks(self._begin, self._not_connected)

    def _begin(self, store: IStore) -> None:
        self._waiting = None
        self.reservations = Reservations(store, self.clock, self.interval)
        self._loop = LoopingCall(lambda: Deferred.fromCoroutine(self._sweep()))
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def _not_connected(self, failure: Failure) -> None:
        # the database service reports why; nothing to sweep without it
        self._waiting = None
        failure.trap(Exception)

    async def _sweep(self) -> None:
        assert self.reservations is not None
        try:
            await repair(self.reservations)
        except DatabaseStarting:
            pass  # the schema is still being set up: the next sweep runs
        except ShopError as e:
            log.warn("order repair sweep failed: {error}", error=e.message)
        except Exception:
            log.failure("order repair sweep failed")

    def stopService(self) -> Optional[Deferred[None]]:
        super().stopService()
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting.cancel()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return None
