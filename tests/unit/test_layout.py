"""The import graph of the package: the layers import one way only.

Every ``import`` of a crackershop module counts, at module level or inside
a function, except those under ``if TYPE_CHECKING:`` (type checking only:
they run no code). A package (``app``, ``server``, ...) or top-level module
(``config``, ``tap``, ...) is one node of the graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "crackershop"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[str]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            yield from (name for other in child.orelse for name in _imports_of(other))
            continue
        yield from _imports_of(child)


def _imports_of(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        yield node.module
        # "from crackershop import x" imports the module crackershop.x
        yield from (f"{node.module}.{alias.name}" for alias in node.names)
    yield from _imports(node)


@cache
def imports() -> dict[str, set[str]]:
    """Each crackershop module and the crackershop modules it imports."""
    found: dict[str, set[str]] = {}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in sorted(PACKAGE.rglob("*.py")):
        names = set(_imports(ast.parse(path.read_text(), str(path))))
        found[module_name(path)] = {n for n in names if n in modules}
    return found


def node(module: str) -> str:
    """``crackershop.app.orders`` -> ``app``; ``crackershop.config`` -> ``config``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, targets in imports().items():
        if module == "crackershop":
            continue
        here = node(module)
        edges.setdefault(here, set()).update(
            node(t) for t in targets if t != "crackershop" and node(t) != here
        )
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """A cycle in the graph, as the path around it; [] when there is none."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        path.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return [*path[path.index(m) :], m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = 2
        path.pop()
        return []

    for n in sorted(edges):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return []


def importers(of: str, by: str) -> list[str]:
    """Modules of node ``by`` that import a module of node ``of``."""
    return sorted(
        m
        for m, targets in imports().items()
        if m != "crackershop" and node(m) == by and any(node(t) == of for t in targets)
    )


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check below can fail: a graph with a cycle is reported with its path."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}}) == []


def test_no_import_cycle_between_packages() -> None:
    """No package (or top-level module) imports, through others, one that imports it."""
    assert cycle(graph()) == []


def test_cluster_and_app_are_apart() -> None:
    """Cluster code never imports app code, nor app code cluster code."""
    assert importers("app", by="cluster") == []
    assert importers("cluster", by="app") == []


def test_only_the_worker_entry_joins_the_cluster_to_serving() -> None:
    """Of the cluster, only the worker entry point builds a serving process
    (site, orders, store): the master and the supervisor know none of it."""
    serving = {"crackershop.server.process", "crackershop.server.site"}
    joined = sorted(
        m
        for m, targets in imports().items()
        if node(m) == "cluster"
        and (targets & serving or {node(t) for t in targets} & {"orders", "store"})
    )
    assert joined == ["crackershop.cluster.worker"]


def test_layers_below_do_not_import_layers_above() -> None:
    """The store and the order rules import no app, server, cluster or ops code;
    the app imports no server, cluster or ops code."""
    for low in ("store", "orders"):
        for high in ("app", "server", "cluster", "ops", "tap", "cli"):
            assert importers(high, by=low) == [], (low, high)
    for high in ("server", "cluster", "ops", "tap", "cli"):
        assert importers(high, by="app") == [], high
