"""A worker's side of serving: adopting the shared socket with a cap on
accepts per wakeup, tracking HTTP connections so the worker can drain, and
the development header naming the worker. Generic twisted.web, no app code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

# Twisted accepts up to 100 (and growing) connections per wakeup; a worker
# woken first would take a whole burst. Capping that alone is not enough: the
# first worker is back in epoll_wait before its sibling is scheduled, so after
# each accepting wakeup it also steps aside for ACCEPT_PAUSE. The environment
# variables are for benchmarks (scripts/bench-cluster), not settings.
ACCEPT_CAP = int(os.environ.get("CRACKERSHOP_ACCEPT_CAP", "1"))
ACCEPT_PAUSE = float(os.environ.get("CRACKERSHOP_ACCEPT_PAUSE", "0.001"))
# While draining, a keep-alive connection idle this long is closed; busier
# ones are closed after their next response (Connection: close), which
# avoids closing a connection a client is just reusing.
DRAIN_IDLE = 0.5
DRAIN_TICK = 0.1


def adopt(
    reactor: Any,
    fd: int,
    family: int,
    site: Site,
    cap: int = ACCEPT_CAP,
    pause: float = ACCEPT_PAUSE,
) -> Any:
    """Serve ``site`` on an inherited listening socket."""
    port = reactor.adoptStreamPort(fd, family, site)
    original = port.doRead

    def resume() -> None:
        if port.connected and not port.disconnecting:
            port.startReading()

    def doRead() -> Any:
        # tcp.Port re-tunes numberAccepts after every wakeup; clamp it again.
        port.numberAccepts = min(port.numberAccepts, cap)
        before = port.sessionno
        result = original()
        if pause > 0 and port.sessionno != before and port.connected:
            # Step aside so a sibling woken by the same burst gets a turn.
            port.stopReading()
            reactor.callLater(pause, resume)
        return result

    port.doRead = doRead
    port.numberAccepts = min(port.numberAccepts, cap)
    return port


class Connections:
    """The site's open HTTP connections; :meth:`drain` closes them as they
    finish and fires when none is left."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.open: set[TrackedChannel] = set()
        self.draining = False
        self.served = 0
        self._drained: list[Deferred[None]] = []
        self._tick: Any = None

    def install(self, site: Site) -> None:
        def channel() -> TrackedChannel:
            return TrackedChannel(self)

        site.protocol = channel  # type: ignore[assignment]

    def idle(self) -> Iterable[TrackedChannel]:
        return [c for c in self.open if not c.requests]

    def drain(self) -> Deferred[None]:
        self.draining = True
        d: Deferred[None] = Deferred()
        self._drained.append(d)
        self._check()
        return d

    def _check(self) -> None:
        self._tick = None
        now = self.clock.seconds()
        for channel in self.idle():
            if now - channel.last_active >= DRAIN_IDLE:
                channel.loseConnection()
        if not self.open:
            drained, self._drained = self._drained, []
            for d in drained:
                d.callback(None)
            return
        self._tick = self.clock.callLater(DRAIN_TICK, self._check)

    def closed(self, channel: TrackedChannel) -> None:
        self.open.discard(channel)


class TrackedChannel(HTTPChannel):
    def __init__(self, connections: Connections) -> None:
        super().__init__()
        self.connections = connections
        self.last_active = connections.clock.seconds()

    def connectionMade(self) -> None:
        self.connections.open.add(self)
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        self.last_active = self.connections.clock.seconds()
        super().dataReceived(data)

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        if self.connections.draining:
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])
            return False
        return bool(super().checkPersistence(request, version))

    def requestDone(self, request: Any) -> None:
        self.last_active = self.connections.clock.seconds()
        self.connections.served += 1
        super().requestDone(request)

    def connectionLost(self, reason: Any = None) -> None:
        self.connections.closed(self)
        super().connectionLost(reason)


class HeaderResource(Resource):
    """Wraps a leaf resource (the Klein app) to add response headers."""

    isLeaf = True

    def __init__(self, wrapped: Any, headers: dict[bytes, bytes]) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.headers = headers

    def render(self, request: Any) -> Any:
        for name, value in self.headers.items():
            request.setHeader(name, value)
        return self.wrapped.render(request)


def with_headers(site: Site, headers: dict[bytes, bytes]) -> Callable[[], None]:
    """Put ``headers`` on every response of ``site``; returns an undo."""
    original = site.resource
    site.resource = HeaderResource(original, headers)

    def undo() -> None:
        site.resource = original

    return undo
