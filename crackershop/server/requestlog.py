"""Request ids, the one log event per request and its metrics.

``X-Request-ID`` is taken from the client when it is sane (at most 64
characters of ``[A-Za-z0-9._-]``), else generated; it is echoed in the
response and carried by the request's log event (namespace
``crackershop.request``), which also has the method, path, status, duration
in seconds and client address; the log writer adds the worker
(:mod:`crackershop.server.logformat`).
"""

from __future__ import annotations

import itertools
import re
import uuid
from functools import lru_cache
from typing import Any, Optional

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from crackershop.metrics import metrics
from crackershop.ratelimit.clientip import ClientAddress

log = Logger(namespace="crackershop.request")

NAME = "X-Request-ID"
HEADER = NAME.lower().encode("ascii")
# A browser may send its own id and reads the one answered (CORS).
REQUEST_HEADERS = (NAME,)
RESPONSE_HEADERS = (NAME,)
SANE = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class Counts:
    """Requests served and in flight in this process."""

    def __init__(self) -> None:
        self.served = 0
        self.in_flight = 0


COUNTS = Counts()


# Generated ids: a random prefix per process and a counter, unique without a
# system call per request (uuid4 was a noticeable share of a small request).
_PREFIX = uuid.uuid4().hex[:12]
_numbers = itertools.count(1)


def request_id(given: Optional[bytes]) -> str:
    if given is not None and SANE.fullmatch(given):
        return given.decode("ascii")
    return f"{_PREFIX}-{next(_numbers):x}"


class RequestLog:
    """``begin`` when a request is dispatched, ``end`` when it has finished
    (or its client went away).

    Metrics are recorded per reactor turn: each request is noted, and at
    the end of the turn they are added up and written to the multi-process
    files once (:meth:`crackershop.metrics.Metrics.requests_answered`), so a
    scrape sees them before the next turn's work. The in-flight gauge is
    copied from the process's count once a second rather than moved twice
    per request."""

    def __init__(self, clock: Any, trusted: Any = (), counts: Counts = COUNTS) -> None:
        self.clock = clock
        self.clients = ClientAddress(trusted)
        self.counts = counts
        self._gauge = LoopingCall(self._publish_in_flight)
        self._gauge.clock = clock
        self._answered: list[tuple[str, str, int, float]] = []

    def start(self) -> None:
        if not self._gauge.running:
            self._gauge.start(1.0, now=True)

    def stop(self) -> None:
        if self._gauge.running:
            self._gauge.stop()
        self.record()

    def _publish_in_flight(self) -> None:
        metrics().in_flight.set(self.counts.in_flight)

    def begin(self, request: Any) -> None:
        rid = request_id(request.getHeader(HEADER))
        request.request_id = rid
        request.begun_at = self.clock.seconds()
        request.setHeader(HEADER, rid.encode("ascii"))
        self.counts.in_flight += 1

    def end(self, request: Any) -> None:
        begun = getattr(request, "begun_at", None)
        if begun is None:
            return
        request.begun_at = None
        counts = self.counts
        counts.in_flight -= 1
        counts.served += 1
        seconds = self.clock.seconds() - begun
        status = getattr(request, "code", 0) or 0
        method = _text(request.method)
        if not self._answered:
            self.clock.callLater(0, self.record)
        self._answered.append(
            (getattr(request, "route_template", "unmatched"), method, status, seconds)
        )
        try:
            address = self.clients.address(request)
        except Exception:
            address = None
        log.info(
            "{method} {path} {status}",
            method=method,
            path=_text(request.path),
            status=status or None,
            duration=seconds,
            client=_address_text(address) if address is not None else None,
            request_id=getattr(request, "request_id", None),
        )

    def record(self) -> None:
        """Write the metrics of the requests noted since the last time."""
        answered, self._answered = self._answered, []
        if answered:
            metrics().requests_answered(answered)


_address_text = lru_cache(maxsize=4096)(str)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
