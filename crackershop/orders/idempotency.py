"""Idempotency-Key: a request repeated with the same key by the same user
within 24 hours replays the first response and creates nothing.

Records live in MongoDB (the ``idempotency`` collection: unique on (user,
key), a TTL index on ``createdAt``), so every worker and server sees them.
A record is claimed by inserting it (the unique index decides the race),
then completed with the response. A request that fails with an error
releases its key, since it created nothing and may be retried.

Except one: a placement whose outcome is unknown (the database went away
during the commit, :class:`PlacementUnknown`) keeps its record, marked
``unknown`` when the database lets us. A retry then answers with the order
if it was placed, finishes the placement if the commit never landed, or
places it afresh if the sweep abandoned it: never a second order. A record
whose order is placed replays that order at once, whatever the record says
(the response may not have been stored).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, Protocol, TypeVar

import attr
from bson import ObjectId
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from crackershop.clock import now_utc
from crackershop.errors import Conflict, ShopError, ValidationFailed
from crackershop.orders.placing import PlacementUnknown, Reservations
from crackershop.orders.states import FAILED, HIDDEN, RESERVING

if TYPE_CHECKING:
    from crackershop.store.interfaces import Document, IStore

log = Logger()

# How long a key is remembered (the records' TTL index).
IDEMPOTENCY_TTL = 24 * 3600

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255
# What a browser sends and reads, for CORS to allow and expose.
REQUEST_HEADERS = (HEADER,)
RESPONSE_HEADERS = (REPLAYED,)


class KeyInFlight(Conflict):
    code = "idempotency_in_flight"


class KeyReused(Conflict):
    code = "idempotency_key_reused"


def read_key(raw: Optional[bytes]) -> Optional[str]:
    """The header's key, or None when absent; a bad key is a 400."""
    if raw is None:
        return None
    try:
        key = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        key = ""
    if not key or len(key) > MAX_KEY:
        raise ValidationFailed(
            "Invalid Idempotency-Key", {HEADER: f"must be 1 to {MAX_KEY} characters"}
        )
    return key


def body_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Response(Protocol):
    """What the app answers with: a JSON body and a status."""

    @property
    def body(self) -> Any: ...

    @property
    def status(self) -> int: ...


Reply = TypeVar("Reply", bound=Response)


@attr.s(auto_attribs=True, frozen=True)
class Replies(Generic[Reply]):
    """How the app answers, given by the app (this package does not import
    it): ``respond(body, status, headers)`` makes its response, ``encode(body)``
    the JSON text it would send, ``order(order_id)`` its answer for a placed
    order (None if there is no such order)."""

    respond: Callable[[Any, int, Mapping[str, str]], Reply]
    encode: Callable[[Any], bytes]
    order: Callable[[ObjectId], Awaitable[Optional[Reply]]]


class Idempotency(Generic[Reply]):
    def __init__(
        self, store: IStore, clock: IReactorTime, abandoned_after: float, replies: Replies[Reply]
    ) -> None:
        self.store = store
        self.clock = clock
        self.replies = replies
        self.reservations = Reservations(store, clock, abandoned_after)

    async def run(
        self,
        user_id: ObjectId,
        key: str,
        digest: str,
        order_id: ObjectId,
        action: Callable[[], Awaitable[Reply]],
    ) -> Reply:
        record_id = ObjectId()
        record = {
            "_id": record_id,
            "user": user_id,
            "key": key,
            "hash": digest,
            "state": "running",
            "order": order_id,
        }
        for _ in range(3):
            existing = await self.store.idempotency.claim(record)
            if existing is None:
                break
            reply = await self._answer_existing(existing, digest)
            if reply is not None:
                return reply
        else:
            raise KeyInFlight("A request with this Idempotency-Key is still being processed")
        try:
            reply = await action()
        except (PlacementUnknown, CancelledError):
            # Cut off (the request's deadline) or unsure: its order may be
            # placed, so the key is kept for a retry to find out.
            await self._keep_unknown(record_id)
            raise
        except BaseException:
            await self._release(record_id)
            raise
        await self._complete(record_id, reply)
        return reply

    async def _complete(self, record_id: ObjectId, reply: Reply) -> None:
        try:
            await self.store.idempotency.complete(
                record_id, reply.status, self.replies.encode(reply.body).decode()
            )
        except ShopError as e:
            # the order stands; a retry finds it placed and replays it
            log.warn("recording an idempotent response failed: {error}", error=e.message)

    async def _keep_unknown(self, record_id: ObjectId) -> None:
        try:
            await self.store.idempotency.mark_unknown(record_id)
        except ShopError as e:
            # stays running: a retry waits for the order to settle, or for
            # abandoned_after, and never places a second one
            log.warn("marking an idempotency key unknown failed: {error}", error=e.message)

    async def _release(self, record_id: ObjectId) -> None:
        try:
            await self.store.idempotency.drop(record_id, running_only=True)
        except ShopError as e:
            # taken over by a retry once its order is seen failed, or after abandoned_after
            log.warn("releasing an idempotency key failed: {error}", error=e.message)

    async def _answer_existing(self, existing: dict[str, Any], digest: str) -> Optional[Reply]:
        """The replay, a conflict, or None when the old record was cleared."""
        now = now_utc(self.clock)
        if existing["createdAt"] < now - timedelta(seconds=IDEMPOTENCY_TTL):
            await self.store.idempotency.drop(existing["_id"], running_only=False)
            return None  # expired; the TTL monitor had not removed it yet
        if existing.get("hash") != digest:
            raise KeyReused("This Idempotency-Key was used with a different request body")
        if existing.get("state") == "done":
            return self.replies.respond(
                json.loads(existing["body"]),
                int(existing["status"]),
                {REPLAYED: "true"},
            )
        stale = existing["createdAt"] < now - timedelta(seconds=self.reservations.repair_after)
        order = await self.store.orders.get(existing["order"])
        if order is not None and order.get("orderStatus") == RESERVING:
            order = await self._settle(existing, order, stale)
        status = order.get("orderStatus") if order is not None else None
        if status is not None and status not in HIDDEN:
            reply = await self._replay(existing["_id"], order)
            if reply is not None:
                return reply
            status = None
        # Failed: that placement is over and placed nothing. Gone: it failed
        # and expired, or (young, still running) it is not inserted yet.
        if status == FAILED or (status is None and (stale or existing.get("unknown"))):
            await self.store.idempotency.drop(existing["_id"], running_only=True)
            log.info("took over idempotency key of user {user}", user=str(existing["user"]))
            return None
        raise KeyInFlight("A request with this Idempotency-Key is still being processed")

    async def _settle(
        self, existing: dict[str, Any], order: Document, stale: bool
    ) -> Optional[Document]:
        """An order still Reserving under this key, moved on where it may be:
        finished when its request ended not knowing (every line is reserved);
        abandoned, as the sweep would, when its request died mid-way."""
        if existing.get("unknown"):
            placed = await self.reservations.resolve(order)  # PlacementUnknown: still unknown
            return placed if placed is not None else await self.store.orders.get(order["_id"])
        if stale:
            await self.reservations.abandon(order)
            return await self.store.orders.get(order["_id"])
        return order  # still being placed

    async def _replay(self, record_id: ObjectId, order: Document) -> Optional[Reply]:
        reply = await self.replies.order(order["_id"])
        if reply is None:
            return None
        await self._complete(record_id, reply)
        return self.replies.respond(reply.body, reply.status, {REPLAYED: "true"})
