"""Idempotency-Key: a request repeated with the same key by the same user
within 24 hours replays the first response and creates nothing.

Records live in MongoDB (the ``idempotency`` collection: unique on (user,
key), a TTL index on ``createdAt``), so every worker and server sees them.
A record is claimed by inserting it (the unique index decides the race),
then completed with the response. A request that fails with an error
releases its key, since it created nothing and may be retried.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Callable, Optional

from bson import ObjectId
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from crackershop.app.http import dumps
from crackershop.app.routing import Reply
from crackershop.errors import Conflict, ValidationFailed
from crackershop.store.interfaces import IStore
from crackershop.store.mongo import now_utc
from crackershop.store.orders import HIDDEN, IDEMPOTENCY_TTL

log = Logger()

HEADER = "Idempotency-Key"
MAX_KEY = 255


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


class Idempotency:
    def __init__(
        self,
        store: IStore,
        clock: IReactorTime,
        abandoned_after: float,
        replay_order: Callable[[ObjectId], Awaitable[Optional[Reply]]],
    ) -> None:
        self.store = store
        self.clock = clock
        self.abandoned_after = abandoned_after
        self.replay_order = replay_order

    async def run(
        self,
        user_id: ObjectId,
        key: str,
        digest: str,
        order_id: ObjectId,
        action: Callable[[], Awaitable[Reply]],
    ) -> Reply:
        record = {
            "_id": ObjectId(),
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
        except BaseException:
            await self.store.idempotency.drop(record["_id"], running_only=True)
            raise
        await self.store.idempotency.complete(
            record["_id"], reply.status, dumps(reply.body).decode()
        )
        return reply

    async def _answer_existing(self, existing: dict[str, Any], digest: str) -> Optional[Reply]:
        """The replay, a conflict, or None when the old record was cleared."""
        now = now_utc(self.clock)
        if existing["createdAt"] < now - timedelta(seconds=IDEMPOTENCY_TTL):
            await self.store.idempotency.drop(existing["_id"], running_only=False)
            return None  # expired; the TTL monitor had not removed it yet
        if existing.get("hash") != digest:
            raise KeyReused("This Idempotency-Key was used with a different request body")
        if existing.get("state") == "done":
            return Reply(
                json.loads(existing["body"]),
                int(existing["status"]),
                {"Idempotent-Replayed": "true"},
            )
        if existing["createdAt"] >= now - timedelta(seconds=self.abandoned_after):
            raise KeyInFlight("A request with this Idempotency-Key is still being processed")
        # The first request died while running. If its order was placed,
        # answer with it; otherwise the key is free again.
        order = await self.store.orders.get(existing["order"])
        if order is not None and order.get("orderStatus") not in HIDDEN:
            reply = await self.replay_order(order["_id"])
            if reply is not None:
                await self.store.idempotency.complete(
                    existing["_id"], reply.status, dumps(reply.body).decode()
                )
                return Reply(reply.body, reply.status, {"Idempotent-Replayed": "true"})
        if order is not None and order.get("orderStatus") != "Failed":
            raise KeyInFlight("A request with this Idempotency-Key is still being processed")
        await self.store.idempotency.drop(existing["_id"], running_only=True)
        log.info("took over abandoned idempotency key of user {user}", user=str(existing["user"]))
        return None
