"""docs/API.md, the API reference, generated from the route table: every
route's method, path, access and summary, and the fields of its request
body. ``GET /openapi.json`` is the machine-readable document built from the
same table.

    python -m crackershop.app.apidoc > docs/API.md    (scripts/api-docs)

A test regenerates it and compares, so no route goes undocumented.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from crackershop.app.openapi import error_statuses, schemas_of
from crackershop.app.routing import Route

ACCESS_TEXT = {
    "public": "anyone",
    "optional": "anyone; a token adds the caller",
    "user": "a logged-in user",
    "admin": "an admin",
}

HEAD = """# CrackerShop API reference

Generated from the route table by `scripts/api-docs` (`python -m
crackershop.app.apidoc`); do not edit by hand. The same table serves
`GET /openapi.json` (OpenAPI 3.1) from a running server.

- Bodies are JSON (`Content-Type: application/json`); routes that take
  images also accept `multipart/form-data` with the same fields plus files.
  Unknown fields, `$`-keys and dotted keys are refused with 400.
- Routes for a user or an admin need `Authorization: Bearer <token>` (from
  register, login or Google sign-in).
- Answers are `{"success": true, "data": ...}` (lists add `count`, `total`,
  `pages`, `currentPage`); errors are
  `{"success": false, "error": "...", "code": "...", "details": {...}}`.
  Each route names the model it answers with; the models are listed at the
  end, and a client generated from `/openapi.json` has them as types (see
  the README's API section).
"""


def route_table() -> list[Route]:
    """The routes of the app as a server builds it (in-memory dependencies)."""
    from twisted.internet.defer import succeed
    from twisted.internet.task import Clock

    from crackershop.app import Dependencies, build_app
    from crackershop.app.mail import OutboxMailer
    from crackershop.app.security import Passwords, Tokens
    from crackershop.store.memory import MemoryStore

    clock = Clock()
    deps = Dependencies(
        store=MemoryStore(clock),
        tokens=Tokens("d" * 32, 3600, clock),
        passwords=Passwords(4, lambda f, *a: succeed(f(*a))),
        mailer=OutboxMailer(None),
        clock=clock,
    )
    routes: list[Route] = build_app(deps).router.routes  # type: ignore[attr-defined]
    return routes


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"object ({name})" if name in defs else name
    if "anyOf" in schema:
        kinds = [_type(s, defs) for s in schema["anyOf"]]
        return " or ".join(k for k in kinds if k != "null") + (
            " or null" if "null" in kinds else ""
        )
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}), defs)}"
    return str(kind)


def _limits(schema: dict[str, Any]) -> str:
    words = {
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "minimum": "at least {}",
        "maximum": "at most {}",
        "exclusiveMinimum": "more than {}",
        "exclusiveMaximum": "less than {}",
        "minItems": "at least {} items",
        "maxItems": "at most {} items",
        "pattern": "matching `{}`",
        "format": "{}",
    }
    found = [text.format(schema[key]) for key, text in words.items() if key in schema]
    for option in schema.get("anyOf", []):
        found += [text.format(option[key]) for key, text in words.items() if key in option]
    if "default" in schema and schema["default"] is not None:
        found.append(f"default `{schema['default']}`")
    return ", ".join(found)


def _fields(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | limits |", "|---|---|---|---|"]
    for name, field in schema.get("properties", {}).items():
        rows.append(
            f"| `{name}` | {_type(field, defs)} | {'yes' if name in required else 'no'} "
            f"| {_limits(field)} |".replace("|  |", "| |")
        )
    return rows


def _answers(route: Route, names: dict[Any, str]) -> str:
    success = ", ".join(str(s) for s in route.success)
    if route.produces:
        what = " or ".join(f"`{kind}`" for kind in route.produces)
    elif route.response is not None:
        what = f"`{names[route.response]}`"
    else:
        what = "JSON"
    errors = ", ".join(str(s) for s in error_statuses(route) if s >= 400)
    return f"Answers {success} with {what}; {errors} with `Error`."


def _route(route: Route, names: dict[Any, str]) -> list[str]:
    out = [f"### `{route.method} {route.path}`", "", route.summary + ".", ""]
    out.append(f"Operation `{route.operation}`. Access: {ACCESS_TEXT[route.access]}.")
    if route.query:
        out.append("Query: " + ", ".join(f"`{q}`" for q in route.query) + ".")
    if route.files:
        files = ", ".join(f"`{name}` (up to {count})" for name, count in route.files.items())
        out.append(f"Images (multipart): {files}.")
    if route.body is not None:
        schema = route.body.model_json_schema()
        defs = schema.get("$defs", {})
        out += ["", f"Body (`{route.body.__name__}`):", "", *_fields(schema, defs)]
        for name, sub in defs.items():
            out += ["", f"`{name}`:", "", *_fields(sub, defs)]
    out += ["", _answers(route, names), ""]
    return out


def _models(defs: dict[str, Any]) -> list[str]:
    out = [
        "## Response models",
        "",
        "The JSON each route answers with. A field that is not required may be",
        "absent; a client should ignore a field it does not know.",
        "",
    ]
    for name, schema in defs.items():
        out += [f"### `{name}`", ""]
        if schema.get("description"):
            out += [" ".join(schema["description"].split()), ""]
        out += [*_fields(schema, defs), ""]
    return out


def markdown(routes: Sequence[Route]) -> str:
    out = [HEAD, "## Routes", "", "| method | path | access | what |", "|---|---|---|---|"]
    for r in routes:
        out.append(f"| {r.method} | `{r.path}` | {r.access} | {r.summary} |")
    out.append("")
    defs: dict[str, Any] = {}
    names: dict[Any, str] = dict(schemas_of([r.response for r in routes if r.response], defs))
    tags: dict[str, list[Route]] = {}
    for route in routes:
        tags.setdefault(route.tag or "service", []).append(route)
    for tag, members in tags.items():
        out += [f"## {tag}", ""]
        for route in members:
            out += _route(route, names)
    out += _models(dict(sorted(defs.items())))
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(markdown(route_table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
