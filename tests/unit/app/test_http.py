"""The HTTP edge: envelopes for every bad input, and the body-size limit."""

from __future__ import annotations

import json

import pytest
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource

from crackershop.server.site import ShopSite
from tests.unit.app.harness import Harness


def test_unknown_route_and_method() -> None:
    """Unknown routes are 404 'Route /x not found'; wrong methods 405 with Allow."""
    h = Harness()
    code, body, _ = h.request("GET", "/x")
    assert (code, body) == (
        404,
        {"success": False, "error": "Route /x not found", "code": "not_found"},
    )
    code, body, headers = h.request("DELETE", "/api/v1/auth/me")
    assert code == 405 and "GET" in headers.getRawHeaders("allow")[0]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        (b'{"email": ', "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (b'{"a": NaN}', "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "bad_request"),
        (b'{"email": "a@b.co", "email": "c@d.co"}', "application/json", 400, "validation_error"),
        (b"email=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"email": "a@b.co"}', "text/plain", 415, "unsupported_media_type"),
        (b"[" * 100000 + b"]" * 100000, "application/json", 400, "invalid_json"),
    ],
)
def test_bad_bodies(raw: bytes, content_type: str, status: int, code: str) -> None:
    """Malformed JSON is 400, non-JSON 415, never a 500."""
    h = Harness()
    got, body, _ = h.request(
        "POST", "/api/v1/auth/login", raw=raw, headers={"Content-Type": content_type}
    )
    assert (got, body["code"]) == (status, code)


@pytest.mark.parametrize(
    "body",
    [
        {"email": {"$gt": ""}, "password": "x"},
        {"email": "a@b.co", "password": "x", "$where": "1"},
        {"email": "a@b.co", "password": "x", "a.b": 1},
    ],
)
def test_operator_injection_is_refused(body: dict) -> None:
    """MongoDB operators and dotted keys in input are a 400 naming the field."""
    h = Harness()
    code, reply, _ = h.request("POST", "/api/v1/auth/login", body)
    assert code == 400 and reply["details"]


def test_url_that_is_not_utf8_is_a_json_404() -> None:
    """A percent-encoded path that is not UTF-8 gets the JSON envelope."""
    h = Harness()
    code, body, _ = h.request("GET", "/api/v1/products/%FF%FE")
    assert code == 404 and body["code"] == "not_found"


def test_security_headers_and_no_server_banner() -> None:
    """Every response carries the security headers and no Server version."""
    h = Harness()
    _, _, headers = h.request("GET", "/health")
    assert headers.getRawHeaders("x-content-type-options") == ["nosniff"]
    assert headers.getRawHeaders("x-frame-options") == ["DENY"]
    assert not headers.hasHeader("server")


def _channel(limit: int) -> tuple[HTTPChannel, StringTransport]:
    site = ShopSite(Resource(), max_body_size=limit, timeout=60)
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def test_oversized_body_is_refused_before_it_is_read() -> None:
    """A Content-Length over the limit gets a JSON 413 and the connection closes."""
    channel, transport = _channel(100)
    channel.dataReceived(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: 5000\r\n\r\n"
    )
    out = transport.value()
    assert out.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in out
    _head, _, body = out.partition(b"\r\n\r\n")
    assert json.loads(body)["code"] == "payload_too_large"
    assert transport.disconnecting


def test_oversized_chunked_body_is_cut_off() -> None:
    """A chunked body is counted as it arrives and refused once past the limit."""
    channel, transport = _channel(10)
    channel.dataReceived(
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8\r\n12345678\r\n8\r\n12345678\r\n"
    )
    assert transport.value().startswith(b"HTTP/1.1 413 ")
    assert transport.disconnecting
