"""The HTTP connection: the site's :class:`~crackershop.server.connection.ConnectionLimits`
applied to every request on it, answered with the JSON envelope instead of
Twisted's bare ``400 Bad Request``.

A request line plus headers over ``max_headers_size`` bytes, or more than
``max_headers`` header lines, is a 431; any other malformed head is a 400.
A request that has not arrived whole ``arrival_timeout`` after its first
byte is a 408 (Twisted's idle timeout restarts at every byte, so a client
trickling a byte now and then would otherwise hold the connection for
ever). The connection is closed after any of these. While the site drains,
every response ends its connection.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol

from crackershop.app.http import raw_response
from crackershop.errors import BadRequest, HeadersTooLarge, RequestTimeout, ShopError
from crackershop.server.connection import ConnectionLimits


class ShopChannel(HTTPChannel):
    _head_too_large = False
    _arrival: Any = None
    # A connection's addresses and whether it is TLS do not change: asked
    # once, not for every request (each was a system call or an adaptation).
    _host: Any = None
    _peer: Any = None
    _secure: Optional[bool] = None

    def __init__(self, limits: ConnectionLimits) -> None:
        super().__init__()
        self.limits = limits
        self.maxHeaders = limits.max_headers
        self.totalHeadersSize = limits.max_headers_size
        # One line longer than the whole head allowance cannot be valid.
        self.MAX_LENGTH = limits.max_headers_size

    def getHost(self) -> Any:
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self) -> Any:
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    def isSecure(self) -> bool:
        if self._secure is None:
            self._secure = bool(super().isSecure())
        return self._secure

    def connectionMade(self) -> None:
        super().connectionMade()
        if self.limits.watcher is not None:
            self.limits.watcher.opened(self)

    def dataReceived(self, data: bytes) -> None:
        # A request begins with the first byte that arrives while no request
        # is being handled (bytes pipelined behind one are replayed here
        # when it is done).
        if data and self._arrival is None and not self._handlingRequest:
            self._start_arrival()
        if self.limits.watcher is not None:
            self.limits.watcher.received(self)
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self._cancel_arrival()
        super().allContentReceived()

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        if self.limits.draining:
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])
            return False
        return bool(super().checkPersistence(request, version))

    def requestDone(self, request: Any) -> None:
        if self.limits.watcher is not None:
            self.limits.watcher.answered(self)
        super().requestDone(request)

    def loseConnection(self) -> None:
        self._cancel_arrival()
        super().loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        self._cancel_arrival()
        if self.limits.watcher is not None:
            self.limits.watcher.closed(self)
        super().connectionLost(reason)

    # -- the deadline for a request to arrive whole

    def _start_arrival(self) -> None:
        seconds = self.limits.arrival_timeout
        if seconds:
            self._arrival = self.callLater(seconds, self._too_slow)

    def _cancel_arrival(self) -> None:
        if self._arrival is not None and self._arrival.active():
            self._arrival.cancel()
        self._arrival = None

    def _too_slow(self) -> None:
        self._arrival = None
        request = self.requests[-1] if self.requests else None
        timed_out = getattr(request, "arrival_timed_out", None)
        if timed_out is not None:
            # The head has arrived: the request answers (with its CORS headers).
            timed_out()
            return
        self._answer_and_close(
            RequestTimeout("The request did not arrive in time and the connection is closed")
        )

    # -- malformed or oversized heads

    def lineLengthExceeded(self, line: bytes) -> None:
        self._head_too_large = True
        self._respondToBadRequestAndDisconnect()

    def _respondToBadRequestAndDisconnect(self) -> None:
        too_large = (
            self._head_too_large
            or self._receivedHeaderCount > self.maxHeaders
            or self._receivedHeaderSize > self.totalHeadersSize
        )
        error: ShopError
        if too_large:
            error = HeadersTooLarge(
                f"Request headers are too large (at most {self.maxHeaders} headers, "
                f"{self.totalHeadersSize} bytes)"
            )
        else:
            error = BadRequest("Malformed HTTP request")
        self._answer_and_close(error)

    def _answer_and_close(self, error: ShopError) -> None:
        if self.transport is not None:
            self.transport.write(raw_response(error))
        self.loseConnection()


def channel_factory(limits: ConnectionLimits) -> Any:
    """A Site's ``protocol``: builds shop channels (HTTP/1.x) sharing ``limits``."""

    def protocol() -> _GenericHTTPChannelProtocol:
        return _GenericHTTPChannelProtocol(ShopChannel(limits))

    return protocol
