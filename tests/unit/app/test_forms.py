"""multipart/form-data parsed as it arrives, with its limits."""

from __future__ import annotations

import json

from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource

from crackershop.app.forms import StreamingForm, as_list, boundary_of
from crackershop.app.uploads import sniff
from crackershop.server.site import ShopSite

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def body(parts: list, boundary: str = "XyZ") -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: image/png\r\n"
        out += b"\r\n" + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def feed_in_pieces(form: StreamingForm, data: bytes, size: int = 7) -> None:
    for start in range(0, len(data), size):
        form.feed(data[start : start + size])
    form.finish()


def test_fields_and_files_arrive_in_pieces() -> None:
    """Fields and files are collected however the body is split."""
    form = StreamingForm(b"XyZ", max_file_size=1000, max_files=5)
    feed_in_pieces(
        form,
        body(
            [
                ("name", b"Sky Shot", None),
                ("isFeatured", b"true", None),
                ("existingImages", b"/a", None),
                ("existingImages", b"/b", None),
                ("images", PNG, "a.png"),
            ]
        ),
    )
    form.check()
    assert form.values() == {
        "name": "Sky Shot",
        "isFeatured": "true",
        "existingImages": ["/a", "/b"],
    }
    assert [(f.field, f.data) for f in form.files] == [("images", PNG)]


def test_oversized_file_and_too_many_files() -> None:
    """A file over the limit, or one file too many, is an error naming the field."""
    big = StreamingForm(b"XyZ", max_file_size=50, max_files=5)
    feed_in_pieces(big, body([("images", PNG, "a.png")]))
    assert big.error is not None and big.error.details == {"images": "larger than 50 bytes"}
    assert big.files == []
    many = StreamingForm(b"XyZ", max_file_size=1000, max_files=2)
    feed_in_pieces(many, body([("images", PNG, f"{i}.png") for i in range(3)]))
    assert many.error is not None and "images" in (many.error.details or {})


def test_malformed_and_truncated_bodies() -> None:
    """Garbage and a body cut short are 400s, never exceptions."""
    garbage = StreamingForm(b"XyZ", max_file_size=1000, max_files=5)
    feed_in_pieces(garbage, b"this is not multipart at all")
    assert garbage.error is not None and garbage.error.status == 400
    cut = StreamingForm(b"XyZ", max_file_size=1000, max_files=5)
    feed_in_pieces(cut, body([("name", b"x", None)])[:-10])
    assert cut.error is not None and cut.error.status == 400


def test_helpers() -> None:
    """Boundaries, list fields and image sniffing."""
    assert boundary_of(b'multipart/form-data; boundary="abc"') == b"abc"
    assert boundary_of(b"application/json") is None
    assert as_list('["/a", "/b"]') == ["/a", "/b"] and as_list("/a") == ["/a"]
    assert sniff(PNG) == ("png", "image/png")
    assert sniff(b"\xff\xd8\xff\xe0rest") == ("jpg", "image/jpeg")
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("webp", "image/webp")
    assert sniff(b"GIF89a...") == ("gif", "image/gif")
    assert sniff(b"hello, I am text") is None


def test_request_streams_a_form_without_buffering_it() -> None:
    """The request hands the form to the parser and keeps no copy of the body."""
    seen = []

    class Look(Resource):
        isLeaf = True

        def render(self, request):  # type: ignore[no-untyped-def]
            seen.append((request.form, request.content.read()))
            return b"{}"

    site = ShopSite(Look(), max_body_size=100, timeout=60, max_upload_size=1000, max_upload_files=5)
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    payload = body([("name", b"x", None), ("images", PNG, "a.png")])
    channel.dataReceived(
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(payload)
        + payload
    )
    form, content = seen[0]
    assert content == b""  # nothing buffered
    assert form.values() == {"name": "x"} and form.files[0].data == PNG
    assert json.loads(transport.value().split(b"\r\n\r\n", 1)[1]) == {}
