"""The OpenAPI 3.1 document, generated from the route table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from crackershop import __version__
from crackershop.app.routing import WRITE_METHODS, Route

ERROR = {
    "type": "object",
    "required": ["success", "error", "code"],
    "properties": {
        "success": {"const": False},
        "error": {"type": "string"},
        "code": {"type": "string"},
        "details": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
SUCCESS = {
    "type": "object",
    "required": ["success"],
    "properties": {"success": {"const": True}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _success(route: Route) -> dict[str, Any]:
    if route.produces:
        return {
            "description": "Success",
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}} for kind in route.produces
            },
        }
    return {
        "description": "Success",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Success"}}},
    }


def _statuses(route: Route) -> dict[str, str]:
    """Every error status the route can answer, with why."""
    found = {
        "400": "Invalid input",
        "404": "Not found",
        "503": "A dependency is unavailable, or the request took too long",
    }
    if route.limiters:
        found["429"] = "Rate limited"
    if route.access in ("user", "admin"):
        found["401"] = "Missing or invalid token"
    if route.access != "public":
        found["403"] = "Not an admin" if route.access == "admin" else "Account blocked"
    if route.method in WRITE_METHODS:
        found["409"] = "Conflict"
    if route.body is not None:
        found["413"] = "Body too large"
        found["415"] = "Body is not JSON"
    for status in route.statuses:
        found.setdefault(str(status), HTTP_REASONS.get(status, "Error"))
    return found


HTTP_REASONS = {
    304: "Not modified",
    401: "Not authorized",
    403: "Forbidden",
    501: "Not configured on this server",
}


def _form_schema(route: Route, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The app's multipart form: the body's fields as form fields, plus files."""
    properties: dict[str, Any] = dict(schema.get("properties", {}))
    for field, count in route.files.items():
        binary = {"type": "string", "format": "binary"}
        properties[field] = (
            binary
            if count == 1
            else {
                "type": "array",
                "items": binary,
                "maxItems": count,
            }
        )
    return {"type": "object", "properties": properties, "required": schema.get("required", [])}


def document(routes: Sequence[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR, "Success": SUCCESS}
    for route in routes:
        responses: dict[str, Any] = {}
        if route.method == "POST":
            # creations answer 201; actions (log in, pay, approve...) 200
            responses["201"] = _success(route)
        responses["200"] = _success(route)
        for status, why in sorted(_statuses(route).items()):
            responses[status] = {"description": why} if status == "304" else _error(why)
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{route.method} {route.path}").strip("_"),
            "tags": [route.tag or "service"],
            "responses": responses,
            "x-access": route.access,
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", route.path)
        ]
        params += [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in route.query
        ]
        if params:
            op["parameters"] = params
        if route.access != "public":
            op["security"] = (
                [{"bearer": []}] if route.access != "optional" else [{}, {"bearer": []}]
            )
        if route.body is not None:
            name = route.body.__name__
            schemas[name] = route.body.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            for sub, schema in schemas[name].pop("$defs", {}).items():
                schemas.setdefault(sub, schema)
            content: dict[str, Any] = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
            }
            if route.files:
                content["multipart/form-data"] = {
                    "schema": _form_schema(route, name, schemas[name])
                }
            op["requestBody"] = {"required": True, "content": content}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "CrackerShop API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
