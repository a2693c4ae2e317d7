"""The package's shape, checked from its source: no import circle, click only in the CLI.

The import graph is read with ``ast`` (nothing is imported), so every import
counts wherever it sits: module level, inside a function (a deferred import
still makes the two modules depend on each other), and under
``if TYPE_CHECKING``.  Type-only imports never run, so they cannot make a
runtime circle, but a circle through them is still two modules that each need
the other to be understood; the whole package is free of them too, so they
count here and a new one fails this test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "healthcache"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its ``__init__``)."""
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The package modules one import statement names (``from X import y`` names X.y when that is a module)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:  # relative: resolved against this module's package
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        yield sub if sub in known else target


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports (itself excluded)."""
    mods = modules(root)
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                is_package = path.name == "__init__.py"
                edges.update(m for m in _imported(node, name, is_package, known) if m in known and m != name)
        graph[name] = edges
    return graph


def external_imports(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the top-level names of what it imports from outside the package."""
    out: dict[str, set[str]] = {}
    for name, path in modules(root).items():
        tops: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.split(".")[0])
        out[name] = tops - {root.name}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


# ---- the checker checks ----------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_checker_sees_circles_through_function_level_relative_and_type_only_imports(tmp_path: Path) -> None:
    pkg = _write(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg.b import thing\n",
            "b.py": "def f():\n    from . import a\n",  # deferred and relative: still a circle
            "sub/__init__.py": "",
            "sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..sub import d\n",
            "sub/d.py": "import pkg.sub.c\n",
            "sub/e.py": "from pkg.sub import c, d\nimport click\n",  # depends on both: no circle
        },
    )
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.sub.c"] == {"pkg.sub.d"}
    assert graph["pkg.sub.e"] == {"pkg.sub.c", "pkg.sub.d"}
    assert cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.sub.c", "pkg.sub.d"]]
    assert "click" in external_imports(pkg)["pkg.sub.e"]


# ---- the package -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_export_package_imports_no_circle(graph: dict[str, set[str]]) -> None:
    export = {m for m in graph if m.startswith("healthcache.export")}
    assert {"healthcache.export.core", "healthcache.export.sqlite", "healthcache.export.postgres"} <= export
    assert [c for c in cycles(graph) if export & set(c)] == []


def test_the_engines_see_only_the_mirror_protocol_and_the_schema(graph: dict[str, set[str]]) -> None:
    for engine in ("healthcache.export.sqlite", "healthcache.export.postgres"):
        assert graph[engine] == {"healthcache.export.mirror", "healthcache.export.tables"}, engine


def test_the_export_plan_is_pure(graph: dict[str, set[str]]) -> None:
    """The plan decides; it reads no file and talks to no database."""
    assert graph["healthcache.export.plan"] <= {"healthcache.export.mirror", "healthcache.export.tables"}
    assert external_imports()["healthcache.export.plan"] <= {
        "__future__",
        "collections",
        "dataclasses",
        "enum",
        "json",
        "typing",
    }


def test_the_package_imports_no_circle(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_only_the_cli_imports_click() -> None:
    users = {m for m, tops in external_imports().items() if "click" in tops}
    assert users and all(m == "healthcache.cli" or m.startswith("healthcache.cli.") for m in users), sorted(users)
