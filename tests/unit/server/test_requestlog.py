"""Request ids and the per-request log event."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.web.test.requesthelper import DummyRequest

from crackershop.server.requestlog import Counts, RequestLog, request_id


def test_a_sane_client_id_is_kept_anything_else_is_replaced() -> None:
    """Up to 64 of [A-Za-z0-9._-] is kept; longer, empty or odd ids get a generated one."""
    assert request_id(b"abc-1.2_X") == "abc-1.2_X"
    seen = set()
    for bad in (b"", b"a" * 65, b"a b", b"x\r\ny", "é".encode(), None):
        generated = request_id(bad)
        assert generated.encode() != bad and request_id(generated.encode()) == generated
        seen.add(generated)
    assert len(seen) == 6  # every generated id is new


def test_one_event_per_request_with_id_status_duration_and_client() -> None:
    """begin sets and echoes the id; end logs one event and counts the request once."""
    clock = Clock()
    counts = Counts()
    requests = RequestLog(clock, counts=counts)
    request: Any = DummyRequest([b"health"])
    request.method = b"GET"
    request.path = b"/health"
    request.client = IPv4Address("TCP", "10.0.0.9", 4321)
    request.requestHeaders.setRawHeaders(b"x-request-id", [b"req-7"])
    seen: list[dict[str, Any]] = []
    observer: Any = seen.append
    globalLogPublisher.addObserver(observer)
    try:
        requests.begin(request)
        assert counts.in_flight == 1
        clock.advance(0.25)
        request.code = 201
        requests.end(request)
        requests.end(request)
    finally:
        globalLogPublisher.removeObserver(observer)
    mine = [e for e in seen if e.get("log_namespace") == "crackershop.request"]
    assert len(mine) == 1
    e = mine[0]
    assert (e["method"], e["path"], e["status"], e["request_id"]) == (
        "GET",
        "/health",
        201,
        "req-7",
    )
    assert e["duration"] == 0.25
    assert e["client"] == "10.0.0.9"
    assert request.responseHeaders.getRawHeaders(b"x-request-id") == [b"req-7"]
    assert (counts.in_flight, counts.served) == (0, 1)
