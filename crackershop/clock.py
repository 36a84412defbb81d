"""The time of day, read from an injected clock (a reactor, or
``twisted.internet.task.Clock`` in tests): the one way the server says
"now" in a document or a response."""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet.interfaces import IReactorTime


def now_utc(clock: IReactorTime) -> datetime:
    """Now, as an aware UTC datetime (how documents store dates)."""
    return datetime.fromtimestamp(clock.seconds(), tz=timezone.utc)
