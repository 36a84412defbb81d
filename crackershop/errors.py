"""Domain errors, and the one place they become HTTP status codes.

Handlers and stores raise these; the HTTP layer turns them into the error
envelope of the API contract. Nothing else builds an error body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Optional


class ShopError(Exception):
    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        details: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details) if details else None
        self.headers = dict(headers) if headers else {}


class BadRequest(ShopError):
    status = 400
    code = "bad_request"


class ValidationFailed(BadRequest):
    """Input that breaks a rule. Without a message of its own, the message is
    the first problem as a sentence ("Password must be at least 8
    characters"), because the app shows ``error`` and never ``details``."""

    code = "validation_error"

    def __init__(
        self,
        message: Optional[str],
        details: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message or describe(details or {}), details, headers)


def field_label(path: str) -> str:
    """A field path as a person reads it: ``orderItems.0.qty`` -> "Qty of
    order item 1", ``mobileNumber`` -> "Mobile number"."""
    parts = path.split(".")
    name = next((p for p in reversed(parts) if not p.isdigit()), path)
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    label = words[:1].upper() + words[1:]
    indexes = [p for p in parts if p.isdigit()]
    if indexes and parts[0] != name:
        owner = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", parts[0]).lower().rstrip("s")
        label = f"{label} of {owner} {int(indexes[0]) + 1}"
    return label


def describe(details: Mapping[str, str]) -> str:
    """The first problem of ``details`` as a sentence."""
    if not details:
        return "The request is not valid"
    field, problem = next(iter(details.items()))
    sentence = problem if field in ("body", "") else f"{field_label(field)} {problem}"
    more = len(details) - 1
    if more:
        sentence += f" (and {more} more problem{'s' if more > 1 else ''})"
    return sentence


class InvalidJson(BadRequest):
    code = "invalid_json"


class Unauthorized(ShopError):
    status = 401
    code = "unauthorized"


class Forbidden(ShopError):
    status = 403
    code = "forbidden"


class NotFound(ShopError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ShopError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(ShopError):
    status = 408
    code = "request_timeout"


class Conflict(ShopError):
    status = 409
    code = "conflict"


class DuplicateKey(Conflict):
    code = "duplicate"

    def __init__(self, field: str) -> None:
        super().__init__(f"A record with this {field} already exists", {field: "already exists"})
        self.field = field


class PayloadTooLarge(ShopError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ShopError):
    status = 415
    code = "unsupported_media_type"


class HeadersTooLarge(ShopError):
    status = 431
    code = "headers_too_large"


class RateLimited(ShopError):
    status = 429
    code = "rate_limited"


class NotImplementedFeature(ShopError):
    status = 501
    code = "not_implemented"


class ServiceUnavailable(ShopError):
    status = 503
    code = "service_unavailable"


# seconds to wait before retrying after a database error: its connections
# are retried at least that often
DATABASE_RETRY_AFTER = 2


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The database is unavailable, please try again shortly",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )


class DatabaseStarting(ServiceUnavailable):
    code = "starting"

    def __init__(self) -> None:
        super().__init__(
            "The server is starting up, please try again shortly",
            headers={"Retry-After": "1"},
        )


def envelope(error: ShopError) -> dict[str, object]:
    body: dict[str, object] = {"success": False, "error": error.message, "code": error.code}
    if error.details:
        body["details"] = error.details
    return body
