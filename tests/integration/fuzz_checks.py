"""Schemathesis hooks for the fuzzing test: a check that no response body
carries a traceback or other internals (loaded with SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis

LEAKS = ("Traceback (most recent call last)", 'File "/', "twisted.python.failure", "<html")


@schemathesis.check
def no_internals(ctx: Any, response: Any, case: Any) -> None:
    """A response never shows a traceback, a source path or an HTML page."""
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    kind = (headers.get("content-type") or [""])[0]
    if kind and not kind.startswith(("application/json", "text/")):
        return  # a binary document (a price list, an image); errors come as JSON
    text = response.content.decode(response.encoding or "utf-8", "replace")
    for leak in LEAKS:
        if leak in text:
            raise AssertionError(f"response leaks internals ({leak!r}): {text[:300]}")
