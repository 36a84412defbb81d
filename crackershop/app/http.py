"""The HTTP edge: the request class, JSON in and out, and envelopes.

Every response body leaves through :func:`render` (success) or
:func:`render_error` (failure), so clients always get the contract's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl

from bson import ObjectId
from twisted.web import server
from twisted.web.iweb import IRequest

from crackershop.app.forms import StreamingForm, boundary_of
from crackershop.errors import (
    BadRequest,
    InvalidJson,
    PayloadTooLarge,
    RequestTimeout,
    ShopError,
    UnsupportedMediaType,
    ValidationFailed,
    envelope,
)

JSON_TYPE = b"application/json; charset=utf-8"

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-site"),
)


@lru_cache(maxsize=8192)  # documents' dates repeat in every answer that shows them
def _iso(value: datetime) -> str:
    offset = value.utcoffset()
    if offset:
        value = value - offset
    # naive datetimes are UTC; milliseconds truncated, as JavaScript prints them
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# the types documents carry most, converted without a chain of isinstance checks
_EXACT: dict[type, Callable[[Any], Any]] = {ObjectId: str, datetime: _iso}


def _default(value: Any) -> Any:
    convert = _EXACT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("bytes are not JSON")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)


def dumps(body: Any) -> bytes:
    return _ENCODER.encode(body).encode("utf-8")


# Reason phrases twisted.web does not know.
PHRASES = {429: b"Too Many Requests"}


def render(request: IRequest, status: int, body: Any) -> bytes:
    request.setResponseCode(status, PHRASES.get(status))
    request.setHeader(b"content-type", JSON_TYPE)
    return dumps(body)


def render_error(request: IRequest, error: ShopError) -> bytes:
    for name, value in error.headers.items():
        request.setHeader(name.encode("ascii"), value.encode("ascii"))
    return render(request, error.status, envelope(error))


def apply_standard_headers(request: IRequest) -> None:
    request.responseHeaders.removeHeader(b"server")
    for name, value in SECURITY_HEADERS:
        request.setHeader(name, value)
    hsts = hsts_header(request)
    if hsts is not None:
        request.setHeader(b"strict-transport-security", hsts)


def hsts_header(request: IRequest) -> Optional[bytes]:
    """Strict-Transport-Security for a response sent over TLS, when the
    site has a max-age (production)."""
    channel = getattr(request, "channel", None)
    max_age = getattr(getattr(channel, "site", None), "hsts_max_age", 0)
    if not max_age or not request.isSecure():
        return None
    return b"max-age=%d; includeSubDomains" % max_age


# -- request bodies


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValidationFailed("Malformed JSON: duplicate key", {key: "appears twice"})
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except ShopError:
        raise
    except (ValueError, RecursionError):
        raise InvalidJson("Malformed JSON in request body") from None


def check_field_names(value: Any, path: str = "") -> None:
    """Refuse MongoDB operators and dotted paths anywhere in user input."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key.startswith("$") or "." in key or "\x00" in key:
                raise ValidationFailed(
                    "Invalid field name", {where: "field names may not start with $ or contain ."}
                )
            check_field_names(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_field_names(item, f"{path}.{index}" if path else str(index))


def is_json_type(content_type: Optional[bytes]) -> bool:
    if not content_type:
        return False
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime == b"application/json" or (
        mime.startswith(b"application/") and mime.endswith(b"+json")
    )


def read_json_body(request: IRequest) -> dict[str, Any]:
    """The request's JSON object; {} for an empty body."""
    content = request.content
    raw = content.read() if content is not None else b""
    if not raw.strip():
        return {}
    if not is_json_type(request.getHeader(b"content-type")):
        raise UnsupportedMediaType("Request body must be JSON (Content-Type: application/json)")
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object")
    check_field_names(data)
    return data


def is_urlencoded(request: IRequest) -> bool:
    content_type = request.getHeader(b"content-type") or b""
    return content_type.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"


def read_urlencoded(request: IRequest) -> dict[str, Any]:
    """A urlencoded form's fields: one value as a string, repeated ones as a list."""
    content = request.content
    raw = content.read() if content is not None else b""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Form body is not valid") from None
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            previous = values[key]
            values[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            values[key] = value
    return values


def query_args(request: IRequest) -> Mapping[str, str]:
    """Query arguments, one value each; a repeated argument is a 400."""
    args: dict[str, str] = {}
    for key, values in (request.args or {}).items():
        try:
            name = key.decode("utf-8")
            decoded = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise BadRequest("Query string is not valid UTF-8") from None
        if len(decoded) > 1:
            raise ValidationFailed("Invalid query", {name: "given more than once"})
        args[name] = decoded[0]
    return args


class ShopRequest(server.Request):
    """A request that refuses an oversized body before reading it whole, and
    parses multipart/form-data as it arrives instead of buffering it.

    A declared Content-Length over the limit is answered at once; a chunked
    body is counted as it arrives and cut off when it passes the limit. A
    multipart form may be larger (it carries images): its limit is the
    site's ``max_form_size``.
    """

    _received = 0
    _refused = False
    form: Optional[StreamingForm] = None

    def _site(self) -> Any:
        return getattr(self.channel, "site", None)

    def _limit(self) -> int:
        name = "max_form_size" if self.form is not None else "max_body_size"
        limit: int = getattr(self._site(), name, 1024 * 1024)
        return limit

    def gotLength(self, length: Optional[int]) -> None:
        boundary = boundary_of(self.requestHeaders.getRawHeaders(b"content-type", [b""])[0])
        if boundary is not None:
            site = self._site()
            self.form = StreamingForm(
                boundary,
                getattr(site, "max_upload_size", 5 * 1024 * 1024),
                getattr(site, "max_upload_files", 5),
            )
        if length is not None and length > self._limit():
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse()
            return
        if self.form is not None:
            self.form.feed(data)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        if self.form is not None:
            self.form.finish()
        super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        limit = self._limit()
        self._refused = True
        self.form = None
        self.requestHeaders.removeHeader(b"expect")
        self._respond_and_close(PayloadTooLarge(f"Request body is larger than {limit} bytes"))

    def _respond_and_close(self, error: ShopError) -> None:
        """Answer at once, before the request has arrived whole, and close."""
        extra: list[tuple[bytes, bytes]] = []
        hsts = hsts_header(self)
        if hsts is not None:
            extra.append((b"Strict-Transport-Security", hsts))
        cors = getattr(getattr(self.channel, "site", None), "cors", None)
        if cors is not None:
            origin = self.requestHeaders.getRawHeaders(b"origin", [b""])[0]
            extra += list(cors.headers(origin))
        transport = self.channel.transport
        if transport is not None:
            transport.write(raw_response(error, extra))
        self.channel.loseConnection()

    def arrival_timed_out(self) -> None:
        """The channel's deadline for this request to arrive whole has passed."""
        self._refused = True
        self.form = None
        self._respond_and_close(
            RequestTimeout("The request did not arrive in time and the connection is closed")
        )


STATUS_LINES = {
    400: b"400 Bad Request",
    408: b"408 Request Timeout",
    413: b"413 Payload Too Large",
    431: b"431 Request Header Fields Too Large",
}


def raw_response(error: ShopError, extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole HTTP/1.1 response carrying the error envelope, for answers
    written straight to the connection before a request exists in full."""
    body = dumps(envelope(error))
    status = STATUS_LINES.get(error.status, b"%d Error" % error.status)
    head = [b"HTTP/1.1 " + status, b"Content-Type: " + JSON_TYPE]
    head += [name.title() + b": " + value for name, value in SECURITY_HEADERS]
    head += [name + b": " + value for name, value in extra]
    head += [b"Content-Length: %d" % len(body), b"Connection: close", b"", b""]
    return b"\r\n".join(head) + body
