"""A worker's side of serving: adopting the shared socket with a cap on
accepts per wakeup, watching the site's HTTP connections so the worker can
drain, and the development header naming the worker. Generic twisted.web,
no app code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any, Callable, Optional

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime, IStreamServerEndpoint
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from crackershop.cluster.board import AcceptBoard
from crackershop.server.connection import IConnectionWatcher

# Twisted accepts up to 100 (and growing) connections per wakeup; a worker
# woken first would take a whole burst. Capping that alone is not enough: the
# first worker is back in epoll_wait before its sibling is even scheduled. So
# a worker holding more connections than its least busy sibling (the accept
# board) also steps aside for ACCEPT_PAUSE, at most MAX_DEFERRALS times in a
# row (a hung sibling must not stall it). The environment variables are for
# benchmarks (scripts/bench-cluster), not settings.
ACCEPT_CAP = int(os.environ.get("CRACKERSHOP_ACCEPT_CAP", "4"))
ACCEPT_PAUSE = float(os.environ.get("CRACKERSHOP_ACCEPT_PAUSE", "0.001"))
ACCEPT_SLACK = 1
MAX_DEFERRALS = 5
# While draining, every response says Connection: close and ends its
# connection. Closing an idle keep-alive connection races with a client that
# is just reusing it: its request is sent, the close arrives instead of the
# answer, and the request is lost (HTTP/1.1 has no way to say "send no more"
# on an idle connection). How long a client has been quiet says nothing
# about when it sends next (a busy or slow client pauses for a second and
# more), so no idle connection is closed early: each is left to its client,
# which either closes it or sends one more request and is answered with
# Connection: close. Only what is still open when DRAIN_UNUSED of the grace
# period has passed is closed (a connection accepted but never used, or a
# client that stays quiet that long).
DRAIN_UNUSED = 0.8
DRAIN_TICK = 0.1


class Balance:
    """Whether this worker should accept now, from the shared board."""

    def __init__(self, board: Optional[AcceptBoard], worker_id: int, connections: Connections):
        self.board = board
        self.worker_id = worker_id
        self.connections = connections
        self.deferrals = 0
        connections.changed = self.publish

    def publish(self) -> None:
        if self.board is not None:
            self.board.set(self.worker_id, len(self.connections.open))

    def withdraw(self) -> None:
        if self.board is not None:
            self.board.clear(self.worker_id)

    def should_wait(self) -> bool:
        if self.board is None:
            return False
        least = self.board.least_other(self.worker_id)
        mine = len(self.connections.open)
        if least is not None and mine > least + ACCEPT_SLACK and self.deferrals < MAX_DEFERRALS:
            self.deferrals += 1
            return True
        self.deferrals = 0
        return False


def adopt(
    reactor: Any,
    fd: int,
    family: int,
    site: Any,
    balance: Optional[Balance] = None,
    cap: int = ACCEPT_CAP,
    pause: float = ACCEPT_PAUSE,
) -> Any:
    """Serve ``site`` (any factory) on an inherited listening socket."""
    port = reactor.adoptStreamPort(fd, family, site)
    original = port.doRead

    def resume() -> None:
        if port.connected and not port.disconnecting:
            port.startReading()

    def doRead() -> Any:
        if balance is not None and balance.should_wait():
            # A sibling holds fewer connections: give it this wakeup.
            port.stopReading()
            reactor.callLater(pause, resume)
            return None
        # tcp.Port re-tunes numberAccepts after every wakeup; clamp it again.
        port.numberAccepts = min(port.numberAccepts, cap)
        return original()

    port.doRead = doRead
    port.numberAccepts = min(port.numberAccepts, cap)
    return port


@implementer(IStreamServerEndpoint)
@attr.s(auto_attribs=True)
class AdoptedEndpoint:
    """The socket a worker inherits from its master, as an endpoint: its
    ``listen`` adopts it (capped and balanced, see :func:`adopt`) and closes
    the inherited descriptor, which the port has duplicated."""

    reactor: Any
    fd: int
    family: int
    balance: Optional[Balance] = None
    cap: int = ACCEPT_CAP

    def listen(self, factory: Any) -> Deferred[Any]:
        port = adopt(self.reactor, self.fd, self.family, factory, self.balance, self.cap)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        return succeed(port)


class Activity:
    """What draining needs to know of one connection."""

    __slots__ = ("last_active", "used")

    def __init__(self, now: float) -> None:
        self.last_active = now
        self.used = False


@implementer(IConnectionWatcher)
class Connections:
    """The site's open HTTP connections; :meth:`drain` closes them as they
    finish and fires when none is left.

    It watches the site's own channels (through the site's connection
    limits) and sets their drain flag; it never replaces the channel, so
    header limits and error answers are the site's in every mode."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.open: dict[Any, Activity] = {}
        self.limits: Any = None
        self._unused_until = 0.0
        self.served = 0
        self.changed: Callable[[], None] = lambda: None
        self._drained: list[Deferred[None]] = []
        self._tick: Any = None

    @property
    def draining(self) -> bool:
        return bool(self.limits is not None and self.limits.draining)

    def install(self, site: Site) -> None:
        """Watch ``site``'s connections; it must carry ``limits`` (a
        :class:`~crackershop.server.connection.ConnectionLimits`) that its channels obey."""
        limits = getattr(site, "limits", None)
        if limits is None:
            raise TypeError("the site has no connection limits to watch its connections by")
        limits.watcher = self
        self.limits = limits

    def idle(self) -> Iterable[Any]:
        return [c for c in self.open if not c.requests]

    def drain(self, grace: float = 5.0) -> Deferred[None]:
        if self.limits is not None:
            self.limits.draining = True
        self._unused_until = self.clock.seconds() + grace * DRAIN_UNUSED
        for channel in self.open:
            close_after_response(channel)
        d: Deferred[None] = Deferred()
        self._drained.append(d)
        self._check()
        return d

    def _check(self) -> None:
        self._tick = None
        now = self.clock.seconds()
        if now >= self._unused_until:
            for channel in self.idle():
                channel.loseConnection()
        if not self.open:
            drained, self._drained = self._drained, []
            for d in drained:
                d.callback(None)
            return
        self._tick = self.clock.callLater(DRAIN_TICK, self._check)

    # -- IConnectionWatcher, called by the site's channels

    def opened(self, channel: Any) -> None:
        self.open[channel] = Activity(self.clock.seconds())
        self.changed()

    def received(self, channel: Any) -> None:
        activity = self.open.get(channel)
        if activity is not None:
            activity.used = True
            activity.last_active = self.clock.seconds()

    def answered(self, channel: Any) -> None:
        self.served += 1
        activity = self.open.get(channel)
        if activity is not None:
            activity.last_active = self.clock.seconds()

    def closed(self, channel: Any) -> None:
        if self.open.pop(channel, None) is not None:
            self.changed()


def close_after_response(channel: HTTPChannel) -> None:
    """Requests already in flight on ``channel`` end the connection (and say
    so if they can)."""
    if not channel.requests:
        return
    channel.persistent = False
    for request in channel.requests:
        if not request.startedWriting:
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])


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
