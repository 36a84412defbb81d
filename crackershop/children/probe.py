"""Whether a child service answers its protocol: a MongoDB ``ping`` command
over a fresh connection with a deadline.

A child is ready when it answers, not when its log says something: a log
line depends on the child's version and log level, an answer does not.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure


class NoAnswer(Exception):
    """The service did not give the expected answer."""


class _Exchange(Protocol):
    """Sends one request and reads until ``complete(buffer)`` says the answer
    is whole (returns True) or wrong (raises)."""

    def __init__(self, request: bytes, complete: Callable[[bytes], bool]) -> None:
        self.request = request
        self.complete = complete
        self.buffer = b""
        self.answered: Deferred[None] = Deferred(lambda d: self._abort())

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        try:
            whole = self.complete(self.buffer)
        except Exception as e:
            self._finish(Failure(e))
            return
        if whole:
            self._finish(None)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._finish(Failure(NoAnswer("the connection closed before an answer")))

    def _finish(self, failure: Optional[Failure]) -> None:
        if self.answered.called:
            return
        if self.transport is not None:
            self.transport.loseConnection()
        if failure is None:
            self.answered.callback(None)
        else:
            self.answered.errback(failure)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]


def exchange(
    reactor: Any,
    endpoint: Any,
    request: bytes,
    complete: Callable[[bytes], bool],
    timeout: float,
) -> Deferred[None]:
    """Connect, send ``request``, fire once the answer is whole; fails on a
    wrong answer, a refused connection or the deadline."""
    protocol = _Exchange(request, complete)
    connecting = connectProtocol(endpoint, protocol)
    connecting.addErrback(lambda failure: protocol._finish(failure))
    answered = protocol.answered
    answered.addTimeout(timeout, reactor)
    return answered


# -- MongoDB: {ping: 1} as OP_MSG, the reply must say ok: 1


def _mongo_request() -> bytes:
    from txmongo.protocol import Msg

    return Msg.create({"ping": 1, "$db": "admin"}).encode(1)


def _mongo_complete(buffer: bytes) -> bool:
    from txmongo.protocol import MongoDecoder, Msg

    decoder = MongoDecoder()
    decoder.feed(buffer)
    reply = next(decoder)
    if reply is None:
        return False
    if not isinstance(reply, Msg) or reply.to_dict().get("ok") != 1:
        raise NoAnswer(f"unexpected reply to ping: {reply!r}")
    return True


def mongo_ping(reactor: Any, host: str, port: int, timeout: float = 2.0) -> Deferred[None]:
    """Fires if the MongoDB server at host:port answers ``ping``."""
    endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    return exchange(reactor, endpoint, _mongo_request(), _mongo_complete, timeout)
