"""multipart/form-data, parsed while it arrives.

The request feeds each chunk of the body to a :class:`StreamingForm` instead
of buffering it, so a form is held in memory once (its files), and a file
over the size limit or one file too many stops being collected at once.
The form's problems are kept and raised when the route reads the form, so
they reach the client as the usual JSON envelope.
"""

from __future__ import annotations

import json
import logging
from io import BytesIO
from typing import Any, NamedTuple, Optional

from python_multipart.multipart import MultipartParser, parse_options_header

from crackershop.errors import BadRequest, ShopError, ValidationFailed

# The parser logs each malformed form through the standard library, which
# twistd turns into unstructured error lines on stderr for every bad client;
# the form's problem reaches the client as a 400 instead.
logging.getLogger("python_multipart").addHandler(logging.NullHandler())
logging.getLogger("python_multipart").propagate = False

MAX_FIELD_SIZE = 64 * 1024
MAX_FIELDS = 200


class UploadedFile(NamedTuple):
    field: str
    data: bytes


def boundary_of(content_type: bytes) -> Optional[bytes]:
    """The boundary of a multipart/form-data content type, else None."""
    mime, params = parse_options_header(content_type)
    if mime.lower() != b"multipart/form-data":
        return None
    boundary = params.get(b"boundary")
    return boundary or None


class StreamingForm:
    def __init__(self, boundary: bytes, max_file_size: int, max_files: int) -> None:
        self.max_file_size = max_file_size
        self.max_files = max_files
        self.fields: dict[str, list[str]] = {}
        self.files: list[UploadedFile] = []
        self.error: Optional[ShopError] = None
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._name = ""
        self._is_file = False
        self._buffer = BytesIO()
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_end": self._end,
            },
        )

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            self._parser.write(data)
        except Exception:  # the parser's errors for malformed input
            self._fail(BadRequest("Malformed multipart/form-data body"))

    def finish(self) -> None:
        if self.error is None:
            try:
                self._parser.finalize()
            except Exception:
                self._fail(BadRequest("Malformed multipart/form-data body"))
        if self.error is None and not self._ended:
            self._fail(BadRequest("Incomplete multipart/form-data body"))

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def values(self) -> dict[str, Any]:
        """The text fields: one value as a string, repeated ones as a list."""
        return {name: v[0] if len(v) == 1 else list(v) for name, v in self.fields.items()}

    def _fail(self, error: ShopError) -> None:
        if self.error is None:
            self.error = error
            self.files = []

    # -- parser callbacks

    def _part_begin(self) -> None:
        self._headers = {}
        self._buffer = BytesIO()
        self._name = ""
        self._is_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        try:
            self._name = params.get(b"name", b"").decode("utf-8")
        except UnicodeDecodeError:
            self._fail(BadRequest("A form field's name is not UTF-8"))
            return
        self._is_file = b"filename" in params
        if not self._name:
            self._fail(BadRequest("A form part has no name"))
        elif self._is_file and len(self.files) >= self.max_files:
            self._fail(
                ValidationFailed(
                    "Too many files", {self._name: f"at most {self.max_files} files per request"}
                )
            )
        elif not self._is_file and sum(len(v) for v in self.fields.values()) >= MAX_FIELDS:
            self._fail(BadRequest("Too many form fields"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        limit = self.max_file_size if self._is_file else MAX_FIELD_SIZE
        if self._buffer.tell() + (end - start) > limit:
            what = "file" if self._is_file else "field"
            self._fail(
                ValidationFailed(
                    f"A {what} is too large", {self._name: f"larger than {limit} bytes"}
                )
            )
            return
        self._buffer.write(data[start:end])

    def _part_end(self) -> None:
        if self.error is not None:
            return
        content = self._buffer.getvalue()
        self._buffer = BytesIO()
        if self._is_file:
            if content:
                self.files.append(UploadedFile(self._name, content))
            return
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(ValidationFailed("Invalid form field", {self._name: "is not UTF-8"}))
            return
        self.fields.setdefault(self._name, []).append(text)

    def _end(self) -> None:
        self._ended = True


def as_list(value: Any) -> Any:
    """A form sends a list as repeated fields, one field, or a JSON array."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                return value
            return parsed
        return [text] if text else []
    return value
