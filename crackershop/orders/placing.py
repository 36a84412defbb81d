"""Placing and cancelling orders without overselling, and repairing what a
crash left half done.

Placing an order (the compensating path; see README "Orders"):

1. insert the order in the hidden state ``Reserving`` (the reservation record);
2. reserve each line with a guarded decrement that also records the order
   on the product (``reservedBy``);
3. move the order ``Reserving -> Requested`` with a guarded update;
4. clear the ``reservedBy`` records.

If a line cannot be reserved, the order goes ``Reserving -> Failed``, every
line reserved for it is given back (exactly once: the give-back needs the
record and removes it) and the hidden order is left to expire (``expireAt``,
a TTL index). The sweep does the same for orders left in
``Reserving``/``Failed`` longer than the repair delay: step 3 and the sweep's
``Reserving -> Failed`` are both guarded updates of one document, so exactly
one of them wins.

Step 3 is the commit: the order is placed once it has landed, and only then.
If the database goes away while it is asked (the update may or may not have
landed), the order is read back; when the database cannot say either, the
placement ends with :class:`PlacementUnknown` (503, ``Retry-After``) and
nothing is released, so a retry with the same ``Idempotency-Key`` finds the
order placed, or finishes step 3 itself (every line is reserved by then).
Every other error means the order was not placed and never will be.

Cancelling: the guarded status change is what allows one caller to return
the stock; each line's return is recorded on the product (``returnedBy``)
until the order says ``stockReturned``, so a crash mid-way is finished by the
sweep without returning any line twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

from bson import ObjectId
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from crackershop.clock import now_utc
from crackershop.errors import DATABASE_RETRY_AFTER, Conflict, ServiceUnavailable, ShopError
from crackershop.orders.states import CANCELLED, FAILED, HIDDEN, REQUESTED, RESERVING

if TYPE_CHECKING:
    # written against the store's seams; the store implements them (and
    # imports the states from here), so only type checking looks back
    from crackershop.store.interfaces import Document, IStore

log = Logger()

# A failed placement's hidden document is kept this long after its stock went
# back (or ten repair delays, if longer): long enough for the sweep to give
# back a reservation that landed late, then the TTL index removes it.
FAILED_KEPT = 3600.0


class InsufficientStock(Conflict):
    code = "insufficient_stock"

    def __init__(self, product: Mapping[str, Any], requested: int, available: int) -> None:
        name = str(product.get("name") or product["_id"])
        super().__init__(
            f"Not enough stock for {name}: {available} available, {requested} requested",
            {
                "product": str(product["_id"]),
                "name": name,
                "available": str(available),
                "requested": str(requested),
            },
        )


class PlacementAbandoned(Conflict):
    code = "order_abandoned"


class PlacementUnknown(ServiceUnavailable):
    """The database went away while the order was being committed: it may
    be placed. Nothing was released; the same Idempotency-Key finds out."""

    code = "order_outcome_unknown"

    def __init__(self) -> None:
        super().__init__(
            "The database went away while your order was being placed; it may have been "
            "placed. Check your orders, or send it again with the same Idempotency-Key",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )


def lines(order: Mapping[str, Any]) -> list[tuple[ObjectId, int]]:
    """(product id, quantity) of each of the order's lines."""
    return [(item["product"], int(item["qty"])) for item in order.get("orderItems", [])]


class Reservations:
    def __init__(self, store: IStore, clock: IReactorTime, repair_after: float = 60.0) -> None:
        self.store = store
        self.clock = clock
        self.repair_after = repair_after

    async def place(
        self, order: Mapping[str, Any], products: Mapping[ObjectId, Document]
    ) -> Document:
        """Reserve every line and record the order, or reserve nothing.

        The placed order; PlacementUnknown when it may be placed (see the
        module's notes); any other error when it is not.
        """
        pending = {**order, "orderStatus": RESERVING}
        await self.store.orders.insert(pending)
        order_id = pending["_id"]
        try:
            for product_id, qty in lines(pending):
                if not await self.store.stock.reserve(product_id, qty, order_id):
                    available = await self.store.stock.available(product_id)
                    raise InsufficientStock(products[product_id], qty, available)
        except BaseException:
            await self._abandon_quietly(pending)
            raise
        if not await self._commit(order_id):
            # Too slow: the repair sweep has abandoned it. Give back anything
            # reserved after the sweep looked (each line at most once).
            await self._abandon_quietly(pending)
            raise PlacementAbandoned("The order took too long to place; please try again")
        return await self._finish(pending)

    async def resolve(self, order: Mapping[str, Any]) -> Optional[Document]:
        """Settle an order whose placement ended in PlacementUnknown (every
        line reserved, the commit asked): the placed order, finishing the
        commit if it never landed, or None when the sweep abandoned it first.
        PlacementUnknown again while the database cannot say."""
        status = order.get("orderStatus")
        if status == RESERVING:
            placed = await self._commit(order["_id"])
        else:
            placed = status not in HIDDEN
        return await self._finish(order) if placed else None

    async def _commit(self, order_id: ObjectId) -> bool:
        """``Reserving -> Requested``: whether the order is placed (False: the
        sweep abandoned it first). Both moves are guarded, so a commit that
        lands late, after a retry, changes nothing."""
        try:
            if await self.store.orders.transition(order_id, RESERVING, {"orderStatus": REQUESTED}):
                return True
        except ShopError as e:
            log.warn("committing order {id} failed: {error}", id=str(order_id), error=e.message)
        try:
            current = await self.store.orders.get(order_id)
            if current is not None and current.get("orderStatus") == RESERVING:
                # not landed (or not yet): ask again
                if await self.store.orders.transition(
                    order_id, RESERVING, {"orderStatus": REQUESTED}
                ):
                    return True
                current = await self.store.orders.get(order_id)
        except ShopError as e:
            raise PlacementUnknown() from e
        return current is not None and current.get("orderStatus") not in HIDDEN

    async def _finish(self, order: Mapping[str, Any]) -> Document:
        """The placed order, its reservation records cleared; should the
        database fail now, the sweep clears them and the answer is built here."""
        order_id = order["_id"]
        try:
            for product_id, _ in lines(order):
                await self.store.stock.settle(product_id, order_id)
            done = await self.store.orders.get(order_id)
        except ShopError as e:
            log.warn(
                "order {id} is placed; reading it back failed: {error}",
                id=str(order_id),
                error=e.message,
            )
            done = None
        if done is None:
            now = now_utc(self.clock)
            done = {**order, "orderStatus": REQUESTED, "updatedAt": now}
        return done

    async def abandon(self, order: Mapping[str, Any]) -> None:
        """Give back what an unfinished placement holds, as the sweep would."""
        await self._abandon(order)

    async def _abandon_quietly(self, order: Mapping[str, Any]) -> None:
        try:
            await self._abandon(order)
        except ShopError as e:  # the sweep finishes it later
            log.warn("releasing order {id} failed: {error}", id=str(order["_id"]), error=e.message)

    async def _abandon(self, order: Mapping[str, Any]) -> None:
        """Release what an unfinished order holds; it stays as ``Failed``
        until ``expireAt``."""
        order_id = order["_id"]
        if order.get("orderStatus") == RESERVING and not await self.store.orders.transition(
            order_id, RESERVING, {"orderStatus": FAILED, "released": False}
        ):
            current = await self.store.orders.get(order_id)
            if current is None or current.get("orderStatus") != FAILED:
                return  # placed after all
        for product_id, qty in lines(order):
            await self.store.stock.unreserve(product_id, qty, order_id)
        await self.store.orders.update(order_id, {"released": True, "expireAt": self.expiry()})

    def expiry(self) -> datetime:
        """When a failed placement released now may go."""
        kept = max(FAILED_KEPT, 10 * self.repair_after)
        return now_utc(self.clock) + timedelta(seconds=kept)

    async def cancel(self, order: Mapping[str, Any], current: str) -> bool:
        """Cancel if the order is still in ``current``; only the caller that
        made the change returns the stock. Whether this call cancelled it."""
        changed = await self.store.orders.transition(
            order["_id"], current, {"orderStatus": CANCELLED, "stockReturned": False}
        )
        if changed:
            await self.restock(order)
        return changed

    async def restock(self, order: Mapping[str, Any]) -> None:
        """Return a cancelled order's stock, each line at most once."""
        order_id = order["_id"]
        for product_id, qty in lines(order):
            await self.store.stock.restock(product_id, qty, order_id)
        await self.store.orders.update(order_id, {"stockReturned": True})
        for product_id, _ in lines(order):
            await self.store.stock.settle_restock(product_id, order_id)
