"""Whether an answer is what its route declares: a success status with its
response model (crackershop.app.responses), an error status the document
lists with the error envelope, a download with its media type.

The tests put every answer of the app through :meth:`Conformance.check`
(the unit harness and the integration tests' HTTP clients), so a field the
server starts to send, or stops sending, fails a test before it reaches a
generated client.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

from pydantic import BaseModel, ValidationError

from crackershop.app.openapi import error_statuses
from crackershop.app.responses import Error
from crackershop.app.routing import Route

# answered by the HTTP edge for any route, before it is routed
EDGE_STATUSES = frozenset({405, 408, 413, 431})


class Mismatch(Exception):
    """An answer that its route does not declare."""


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"({\w+})", path)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}/?$")


def _media_type(content_type: Optional[str]) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class Conformance:
    def __init__(self, routes: Sequence[Route]) -> None:
        # a literal segment wins over a parameter (/orders/myorders, /orders/{id})
        ordered = sorted(routes, key=lambda r: r.path.count("{"))
        self.routes = [(r, _pattern(r.path)) for r in ordered]

    def route_for(self, method: str, path: str) -> Optional[Route]:
        path = path.split("?", 1)[0]
        for route, pattern in self.routes:
            if route.method == method.upper() and pattern.match(path):
                return route
        return None

    def check(
        self,
        method: str,
        path: str,
        status: int,
        content_type: Optional[str],
        body: bytes,
    ) -> None:
        """Raise :class:`Mismatch` unless the answer is one the route declares."""
        if method.upper() in ("HEAD", "OPTIONS"):
            return
        route = self.route_for(method, path)
        where = f"{method.upper()} {path} answered {status}"
        if route is None:
            if status >= 400 and body:
                self._validate(Error, body, content_type, where)
            return
        if status in route.success:
            if route.produces:
                kind = _media_type(content_type)
                if not any(kind == _media_type(p) for p in route.produces):
                    raise Mismatch(f"{where} as {kind!r}, not one of {list(route.produces)}")
            elif route.response is not None:
                self._validate(route.response, body, content_type, where)
            return
        declared = error_statuses(route)
        if status == 304 and 304 in declared:
            if body:
                raise Mismatch(f"{where} with a body")
            return
        if status not in declared and status not in EDGE_STATUSES:
            raise Mismatch(
                f"{where}, which its route does not declare "
                f"(success {list(route.success)}, errors {sorted(declared)})"
            )
        if status >= 400:
            self._validate(Error, body, content_type, where)

    @staticmethod
    def _validate(
        model: type[BaseModel], body: bytes, content_type: Optional[str], where: str
    ) -> None:
        kind = _media_type(content_type)
        if kind != "application/json":
            raise Mismatch(f"{where} as {kind!r}, not JSON")
        try:
            model.model_validate_json(body, strict=True)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                for err in e.errors()[:8]
            )
            raise Mismatch(
                f"{where}, which is not a {model.__name__}: {problems}\n{body[:600]!r}"
            ) from None
