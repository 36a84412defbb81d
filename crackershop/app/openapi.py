"""The OpenAPI 3.1 document, generated from the route table.

Every operation gets its tag (the resource), its operationId and summary
(``Route.operation``, ``Route.summary``), its request bodies (the route's
``body`` model as JSON and, where it takes files, as a multipart form) and
a response for each status it answers: the success model it declares
(``Route.response``, see crackershop.app.responses) and the error envelope.
Code generators (openapi-python-client, openapi-typescript) build typed
clients from it; the README says how.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from crackershop import __version__
from crackershop.app.responses import Error
from crackershop.app.routing import WRITE_METHODS, Route
from crackershop.store.interfaces import SORTS

REF = "#/components/schemas/{model}"
JSON = "application/json"
FORM = "multipart/form-data"
# openapi-python-client reads a binary answer only as application/octet-stream:
# listed beside the real types so that it generates the download call
BYTES = "application/octet-stream"

HTTP_REASONS = {
    304: "Not modified (the If-None-Match tag is current)",
    401: "Not authorized",
    403: "Forbidden",
    501: "Not configured on this server",
}

# query parameters by name, as the list routes read them (crackershop.app.queries)
QUERY: dict[str, dict[str, Any]] = {
    "page": {"type": "integer", "minimum": 1, "default": 1},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
    "days": {"type": "integer", "minimum": 1, "maximum": 366, "default": 30},
    "minPrice": {"type": "number", "minimum": 0},
    "maxPrice": {"type": "number", "minimum": 0},
    "featured": {"type": "boolean"},
    "diwaliSpecial": {"type": "boolean"},
    "sortBy": {"type": "string", "enum": list(SORTS), "default": "-createdAt"},
}

RATE_HEADERS: dict[str, tuple[str, str]] = {
    "RateLimit-Limit": ("integer", "Requests the binding limit allows per window"),
    "RateLimit-Remaining": ("integer", "Requests left in the window"),
    "RateLimit-Reset": ("integer", "Seconds until the window has room again"),
    "RateLimit-Policy": ("string", 'The binding limit, as "<limit>;w=<seconds>"'),
}
RETRY_AFTER = ("integer", "Seconds to wait before trying again")


class _Names(GenerateJsonSchema):
    """Schema names a generator turns into class names: ``Paginated[Product]``
    becomes ``PaginatedProduct``, ``Success[list[Address]]``
    ``SuccessListAddress``."""

    def normalize_name(self, name: str) -> str:
        return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p)

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Currentpage" for currentPage says nothing the name does not


def _open(schema: Any) -> Any:
    """A response schema without ``additionalProperties: false``: the models
    refuse undeclared fields so that tests notice them, but a client should
    take an answer with a field it does not know (a shop's older data)."""
    if isinstance(schema, dict):
        return {
            k: _open(v)
            for k, v in schema.items()
            if not (k == "additionalProperties" and v is False)
        }
    if isinstance(schema, list):
        return [_open(v) for v in schema]
    return schema


def _no_defaults(schema: Any) -> Any:
    """A schema without ``default`` keywords, a default other than null said
    in the description instead. openapi-typescript makes a property with a
    default required (it is always in an answer), which a request body
    leaves out; and an answer has no defaults."""
    if isinstance(schema, list):
        return [_no_defaults(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    plain = {
        k: ({n: _no_defaults(p) for n, p in v.items()} if k == "properties" else _no_defaults(v))
        for k, v in schema.items()
        if k != "default"
    }
    if schema.get("default") is not None:
        said = f"Default: {json.dumps(schema['default'])}."
        plain["description"] = f"{plain['description']} {said}" if "description" in plain else said
    return plain


def schemas_of(
    models: Iterable[type[BaseModel]], defs: dict[str, Any], open_objects: bool = False
) -> dict[type[BaseModel], str]:
    """Add the models' schemas to ``defs``; each model's schema name."""
    unique = list(dict.fromkeys(models))
    if not unique:
        return {}
    refs, found = models_json_schema(
        [(m, "validation") for m in unique], ref_template=REF, schema_generator=_Names
    )
    for name, schema in found.get("$defs", {}).items():
        schema = _no_defaults(_open(schema) if open_objects else schema)
        # generators name classes by title: "SuccessListAddress", not "Success[list[Address]]"
        schema["title"] = name
        if defs.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")
    return {m: refs[(m, "validation")]["$ref"].rsplit("/", 1)[-1] for m in unique}


def error_statuses(route: Route) -> dict[int, str]:
    """Every error status the route can answer, with why."""
    found = {
        400: "Invalid input",
        404: "Not found",
        503: "A dependency is unavailable, or the request took too long",
    }
    if route.limiters:
        found[429] = "Rate limited"
    if route.access in ("user", "admin"):
        found[401] = "Missing or invalid token"
    if route.access != "public":
        found[403] = "Not an admin" if route.access == "admin" else "Account blocked"
    if route.method in WRITE_METHODS:
        found[409] = "Conflict"
    if route.body is not None:
        found[413] = "Body too large"
        found[415] = "Body is not JSON" + (" or a multipart form" if route.files else "")
    for status in route.statuses:
        found.setdefault(status, HTTP_REASONS.get(status, "Error"))
    return dict(sorted(found.items()))


def _header(kind: str, description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


def _error(why: str, status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": why,
        "content": {JSON: {"schema": {"$ref": REF.format(model="Error")}}},
    }
    if status == 429:
        headers = {name: _header(*spec) for name, spec in RATE_HEADERS.items()}
        headers["Retry-After"] = {**_header(*RETRY_AFTER), "required": True}
        response["headers"] = headers
    elif status == 503:
        response["headers"] = {"Retry-After": _header(*RETRY_AFTER)}
    return response


def _success(route: Route, names: Mapping[type[BaseModel], str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": "Success"}
    if route.produces:
        kinds = list(route.produces)
        text = all(kind.startswith("text/") for kind in kinds)
        if not text:
            kinds.append(BYTES)
        schema = {"type": "string"} if text else {"type": "string", "format": "binary"}
        response["content"] = {kind: {"schema": schema} for kind in kinds}
    elif route.response is not None:
        ref = {"$ref": REF.format(model=names[route.response])}
        response["content"] = {JSON: {"schema": ref}}
    else:
        response["content"] = {JSON: {"schema": {"type": "object"}}}
    if route.limiters:
        response["headers"] = {name: _header(*spec) for name, spec in RATE_HEADERS.items()}
    return response


def _form_field(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A text part of the form: always a string, whatever the JSON type
    ("true", "120"); the server converts it as it validates the body."""
    options = schema.get("anyOf", [schema])
    kinds = {o.get("type") for o in options if o.get("type") != "null"}
    field: dict[str, Any] = {"type": "string"}
    if "array" in kinds:
        return {"type": "array", "items": field}
    enums = [v for o in options for v in o.get("enum", [])]
    if enums:
        field["enum"] = enums
    elif kinds == {"boolean"}:
        field["enum"] = ["true", "false"]
    elif kinds <= {"number", "integer"} and kinds:
        field["description"] = "A number"
    for key in ("maxLength", "pattern"):
        for option in options:
            if key in option and kinds == {"string"}:
                field[key] = option[key]
    if "description" in schema:
        field["description"] = schema["description"]
    return field


def form_schema(route: Route, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The route's multipart form: the body's fields as text parts, and its
    file parts (``format: binary``; a list where it takes several)."""
    properties = {
        name: _form_field(field)
        for name, field in schema.get("properties", {}).items()
        if name not in route.files
    }
    for name, count in route.files.items():
        binary = {"type": "string", "format": "binary"}
        properties[name] = (
            binary if count == 1 else {"type": "array", "items": binary, "maxItems": count}
        )
    required = [name for name in schema.get("required", []) if name not in route.files]
    form: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        form["required"] = required
    return form


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    params += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": QUERY.get(name, {"type": "string"}),
        }
        for name in route.query
    ]
    params += [
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": why,
            "schema": {"type": "string"},
        }
        for name, why in route.headers.items()
    ]
    return params


def _operation_id(route: Route) -> str:
    if route.operation:
        return route.operation
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{route.method} {route.path}").strip("_")


def document(routes: Sequence[Route]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    bodies = schemas_of((r.body for r in routes if r.body is not None), defs)
    names = schemas_of(
        [Error, *(r.response for r in routes if r.response is not None)], defs, open_objects=True
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        responses: dict[str, Any] = {}
        for status in route.success:
            responses[str(status)] = _success(route, names)
        for status, why in error_statuses(route).items():
            responses[str(status)] = {"description": why} if status == 304 else _error(why, status)
        op: dict[str, Any] = {
            "tags": [route.tag or "service"],
            "summary": route.summary,
            "operationId": _operation_id(route),
            "responses": responses,
            "x-access": route.access,
        }
        params = _parameters(route)
        if params:
            op["parameters"] = params
        if route.access != "public":
            op["security"] = (
                [{"bearer": []}] if route.access != "optional" else [{}, {"bearer": []}]
            )
        if route.body is not None:
            name = bodies[route.body]
            content: dict[str, Any] = {JSON: {"schema": {"$ref": REF.format(model=name)}}}
            if route.files:
                form = name.removesuffix("Body") + "Form"
                defs.setdefault(form, form_schema(route, defs[name]))
                content[FORM] = {"schema": {"$ref": REF.format(model=form)}}
            op["requestBody"] = {
                # The server reads a missing body as {} and says which fields
                # are required; and openapi-python-client (0.29) generates
                # code that does not import for two required bodies.
                "required": bool(defs[name].get("required")) and not route.files,
                "content": content,
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CrackerShop API",
            "version": __version__,
            "description": (
                "The shop's HTTP API. Answers are `{success: true, data}` envelopes "
                "(lists add `count`, pages `total`, `pages` and `currentPage`); "
                "errors are `{success: false, error, code, details}`."
            ),
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(r.tag or "service" for r in routes)],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(defs.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
