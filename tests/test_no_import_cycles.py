"""No import circles among the ``harness`` modules (TEAM.md's standard, kept by a test).

A circle makes a module's import order matter: whichever side is imported first sees the other
half-initialised, so a harmless new import elsewhere can turn into an ``ImportError`` (or a
``None`` where a class should be) far from the change. The graph is read from the source with
``ast``, so the test needs no import of the harness and names every circle it finds.

Counted: every import of a harness module, at module level, under ``if TYPE_CHECKING:`` (the
two modules still need each other, the type checker says so) and inside functions, except a
function-local import whose line says it is lazy (``# lazy for cost: ...``, and why): an import
moved into a function only to dodge a circle leaves the circle in the design, and is counted.
``from pkg import name`` counts as an import of ``pkg.name`` when that is a
module, else of ``pkg`` (a re-exported name is read from the package's ``__init__``). Importing
``a.b.c`` also runs ``a/b/__init__.py``, so it counts as importing ``a.b`` too, unless ``a.b`` is
a package the importer itself sits in (that one is already loading).

Run as a script to list the circles: ``python tests/test_no_import_cycles.py``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "harness"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module under ``root`` by dotted name (a package by its own name, for ``__init__``)."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


LAZY = re.compile(r"#.*\blazy\b")


def _imports(tree: ast.Module, lines: list[str]) -> list[ast.Import | ast.ImportFrom]:
    """The module's import statements, but not the function-local ones marked lazy for cost."""
    out: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                if not (in_function and LAZY.search(lines[child.lineno - 1])):
                    out.append(child)
            else:
                walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    walk(tree, False)
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The harness modules that importing ``name`` imports directly."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    text = path.read_text()
    for node in _imports(ast.parse(text, str(path)), text.splitlines()):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            targets.add(sub if sub in known else source)
    edges: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            # an ancestor of the importer is already loading; only its own import is a real edge
            if mod in known and mod != name and (mod == target or not (name + ".").startswith(mod + ".")):
                edges.add(mod)
    return edges


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
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
            if len(component) > 1 or v in g.get(v, ()):
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(found)


def describe(component: list[str], g: dict[str, set[str]]) -> str:
    """One circle's imports, each ``a -> b`` inside the component."""
    members = set(component)
    lines = [f"{a} -> {b}" for a in component for b in sorted(g[a] & members)]
    return "\n    ".join(lines)


def test_the_graph_sees_a_circle(tmp_path: Path) -> None:
    """The reader finds a circle made of each import form the harness uses, and skips lazy ones."""
    pkg = tmp_path / "harness"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("def __getattr__(name):\n    from .a import A  # lazy for cost: a test\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\nA = 1\n")
    (pkg / "b.py").write_text("from harness import A\n")  # a re-exported name: the package
    (pkg / "c.py").write_text("def f():\n    from . import b\n")  # function-local, not marked lazy
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "x.py").write_text("from . import y\n")
    (pkg / "sub" / "y.py").write_text("try:\n    import harness.sub.x\nexcept ImportError:\n    pass\n")
    g = graph(pkg)
    assert g["harness"] == set() and g["harness.b"] == {"harness"}
    assert g["harness.a"] == {"harness.c"} and g["harness.c"] == {"harness.b"}
    assert cycles(g) == [["harness.sub.x", "harness.sub.y"]]
    (pkg / "__init__.py").write_text("def __getattr__(name):\n    from .a import A\n")  # no longer marked
    assert cycles(graph(pkg)) == [
        ["harness", "harness.a", "harness.b", "harness.c"],
        ["harness.sub.x", "harness.sub.y"],
    ]


def test_no_import_cycles() -> None:
    g = graph()
    assert "harness.journal" in g and "harness.drill" in g  # the walk found the package
    found = cycles(g)
    assert not found, "import circles:\n  " + "\n  ".join(describe(c, g) for c in found)


if __name__ == "__main__":
    g = graph()
    for component in cycles(g):
        print(f"{len(component)} modules:\n    {describe(component, g)}")
