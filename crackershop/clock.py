"""The time of day, read from an injected clock (a reactor, or
``twisted.internet.task.Clock`` in tests): the one way the server says
"now" in a document or a response."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from twisted.internet.interfaces import IReactorTime


def now_utc(clock: IReactorTime) -> datetime:
    """Now, as an aware UTC datetime (how documents store dates)."""
    return datetime.fromtimestamp(clock.seconds(), tz=timezone.utc)


class _Stamps:
    """JavaScript's ``toISOString`` of a time (UTC, milliseconds); the date
    and time of day are worked out once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, when: float) -> str:
        second = math.floor(when)
        # rounded to the microsecond first, as datetime.fromtimestamp does
        micros = round((when - second) * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{micros // 1000:03d}Z"


iso_stamp = _Stamps()


def iso_now(clock: IReactorTime) -> str:
    """Now as JSON shows a date ("2026-11-29T19:22:31.082Z"), without
    making a datetime (the probes answer it with every request)."""
    return iso_stamp(clock.seconds())
