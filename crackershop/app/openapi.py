"""The OpenAPI 3.1 document, generated from the route table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from crackershop import __version__
from crackershop.app.routing import Route

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


def document(routes: Sequence[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR, "Success": SUCCESS}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{route.method} {route.path}").strip("_"),
            "tags": [route.tag or "service"],
            "responses": {
                "200" if route.method != "POST" else "201": {
                    "description": "Success",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Success"}}
                    },
                },
                "400": _error("Invalid input"),
                "404": _error("Not found"),
                "429": _error("Rate limited"),
                "503": _error("A dependency is unavailable"),
            },
        }
        if route.method == "POST" and route.path in ("/api/v1/auth/login",):
            op["responses"]["200"] = op["responses"].pop("201")
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
            if route.access != "optional":
                op["responses"]["401"] = _error("Missing or invalid token")
            if route.access == "admin":
                op["responses"]["403"] = _error("Not an admin")
        if route.body is not None:
            name = route.body.__name__
            schemas[name] = route.body.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            for sub, schema in schemas[name].pop("$defs", {}).items():
                schemas.setdefault(sub, schema)
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            }
            op["responses"]["413"] = _error("Body too large")
            op["responses"]["415"] = _error("Body is not JSON")
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
