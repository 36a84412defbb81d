"""CORS, in front of the routes: a listed origin gets the CORS headers on
every response (errors included), any other origin gets none, and a
preflight OPTIONS for any path is answered here, before routing, without
touching the database, Redis or the rate limits.

The headers a browser may send beyond the basics, and the response headers
it may read, are not listed here: each feature declares its own
(``REQUEST_HEADERS`` / ``RESPONSE_HEADERS``) and the site collects them
(``crackershop.server.site.make_cors``).

``*`` lets any origin read responses, as ``Access-Control-Allow-Origin: *``
without credentials: a wildcard never comes with credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from crackershop.app.http import apply_standard_headers

METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
# what every JSON API client sends, whatever features the server has
BASIC_REQUEST_HEADERS = ("Content-Type", "Authorization", "X-Requested-With", "Accept")
MAX_AGE = b"600"


def header_list(names: Iterable[str]) -> bytes:
    """``names`` once each (case-insensitively), in order, comma separated."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return ", ".join(seen.values()).encode("latin-1")


class Cors:
    """Which origins may read responses (``*``: any, for development), which
    request headers they may send and which response headers they may read."""

    def __init__(
        self,
        origins: Iterable[str],
        request_headers: Iterable[str] = (),
        response_headers: Iterable[str] = (),
    ) -> None:
        listed = {origin.rstrip("/") for origin in origins}
        self.any = "*" in listed
        self.origins = frozenset(o.encode("latin-1") for o in listed if o != "*")
        self.allowed_headers = header_list([*BASIC_REQUEST_HEADERS, *request_headers])
        self.exposed_headers = header_list(response_headers)

    def allows(self, origin: bytes) -> bool:
        return bool(origin) and origin != b"null" and (self.any or origin in self.origins)

    def headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """The CORS headers of a response to ``origin`` (none if unlisted)."""
        if not self.allows(origin):
            return [(b"Vary", b"Origin")]
        granted = [(b"Vary", b"Origin")]
        if self.any:
            granted.append((b"Access-Control-Allow-Origin", b"*"))
        else:
            granted.append((b"Access-Control-Allow-Origin", origin))
            granted.append((b"Access-Control-Allow-Credentials", b"true"))
        if self.exposed_headers:
            granted.append((b"Access-Control-Expose-Headers", self.exposed_headers))
        return granted

    def apply(self, request: IRequest) -> bool:
        """Set the headers for the request's origin; whether it is allowed."""
        headers = self.headers(request.getHeader(b"origin") or b"")
        for name, value in headers:
            request.setHeader(name, value)
        return len(headers) > 1

    def preflight(self, request: IRequest) -> bytes:
        apply_standard_headers(request)
        request.setResponseCode(204)
        request.setHeader(b"allow", METHODS)
        if self.apply(request):
            request.setHeader(b"access-control-allow-methods", METHODS)
            request.setHeader(b"access-control-allow-headers", self.allowed_headers)
            request.setHeader(b"access-control-max-age", MAX_AGE)
        request.setHeader(
            b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        )
        return b""


class CorsResource(Resource):
    """Wraps the Klein resource (a leaf): answers OPTIONS, adds CORS headers
    to everything else and hands it on."""

    isLeaf = True

    def __init__(self, wrapped: IResource, cors: Cors) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.cors = cors

    def render(self, request: Any) -> Any:
        if request.method == b"OPTIONS":
            return self.cors.preflight(request)
        self.cors.apply(request)
        return self.wrapped.render(request)
