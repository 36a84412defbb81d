"""Encoded answers kept while what they were made from is unchanged.

A customer's product list is the same bytes for everyone until the
catalogue's cache fetches its page or its categories again. The catalogue
hands out the very objects it keeps, so an answer encoded from them stays
right exactly as long as the catalogue returns those same objects: the
check is identity (``is``), never a time of its own, so it can be no staler
than the catalogue itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Optional

from crackershop.app.http import JSON_TYPE, dumps
from crackershop.app.routing import Reply

MAX_ENTRIES = 512
CONTENT_TYPE = JSON_TYPE.decode("ascii")


class Rendered:
    """Encoded bodies by key, each with the source objects it was made from;
    at most ``max_entries``, least recently used dropped first."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[tuple[Any, ...], bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, sources: tuple[Any, ...]) -> Optional[Reply]:
        """The kept answer, if it was made from these very objects."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        kept, body = entry
        if len(kept) != len(sources) or any(a is not b for a, b in zip(kept, sources)):
            return None
        self._entries.move_to_end(key)
        return Reply(body, content_type=CONTENT_TYPE)

    def put(self, key: Hashable, sources: tuple[Any, ...], reply: Reply) -> Reply:
        """Keep ``reply``'s JSON body, encoded once, and answer with it."""
        body = dumps(reply.body)
        self._entries[key] = (sources, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return Reply(body, reply.status, reply.headers, CONTENT_TYPE)
