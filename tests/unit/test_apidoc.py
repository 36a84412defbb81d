"""docs/API.md is the API reference generated from the route table, current,
complete, and linked from the README."""

from __future__ import annotations

from pathlib import Path

from crackershop.app.apidoc import markdown, route_table

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_is_current() -> None:
    """Regenerate with scripts/api-docs when a route or a request body changes."""
    assert (ROOT / "docs" / "API.md").read_text() == markdown(route_table())


def test_every_route_is_documented_with_its_body() -> None:
    """Each route has its section, access and summary; each body field is listed."""
    text = (ROOT / "docs" / "API.md").read_text()
    routes = route_table()
    assert len(routes) > 40
    for route in routes:
        section = text.split(f"### `{route.method} {route.path}`\n", 1)
        assert len(section) == 2, f"{route.method} {route.path} is not documented"
        body = section[1].split("\n### ", 1)[0]
        assert route.summary in body
        assert f"| {route.method} | `{route.path}` | {route.access} |" in text
        if route.body is not None:
            for field in route.body.model_fields:
                name = route.body.model_fields[field].alias or field
                assert f"| `{name}` |" in body, (route.path, name)


def test_the_readme_links_the_reference() -> None:
    """The README points at docs/API.md, which exists."""
    readme = (ROOT / "README.md").read_text()
    assert "(docs/API.md)" in readme
    assert "see API.md" not in readme
