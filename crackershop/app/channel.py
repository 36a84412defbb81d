"""The HTTP connection: limits on a request's head, answered with the JSON
envelope instead of Twisted's bare ``400 Bad Request``.

A request line plus headers over ``max_headers_size`` bytes, or more than
``max_headers`` header lines, is a 431; any other malformed head is a 400.
The connection is closed after either.
"""

from __future__ import annotations

from typing import Any

from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol

from crackershop.app.http import raw_response
from crackershop.errors import BadRequest, HeadersTooLarge, ShopError


class ShopChannel(HTTPChannel):
    _head_too_large = False

    def __init__(self, max_headers: int, max_headers_size: int) -> None:
        super().__init__()
        self.maxHeaders = max_headers
        self.totalHeadersSize = max_headers_size
        # One line longer than the whole head allowance cannot be valid.
        self.MAX_LENGTH = max_headers_size

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
        if self.transport is not None:
            self.transport.write(raw_response(error))
        self.loseConnection()


def channel_factory(max_headers: int, max_headers_size: int) -> Any:
    """A Site's ``protocol``: builds shop channels (HTTP/1.x)."""

    def protocol() -> _GenericHTTPChannelProtocol:
        return _GenericHTTPChannelProtocol(ShopChannel(max_headers, max_headers_size))

    return protocol
