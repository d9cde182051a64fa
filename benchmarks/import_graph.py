#!/usr/bin/env python3
"""The import graph of the ``codemod`` package: which module imports which, read from the source.
Every import that runs counts, at the top or inside a function; those under ``if TYPE_CHECKING:``
only name types for annotations and never run, so they do not.

    .venv/bin/python benchmarks/import_graph.py          # print it; exit 1 if there is a circle

Modules are listed bottom up (each after everything it imports), so the listing is the order in
which a newcomer can read the package.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "codemod"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (a package's ``__init__`` counts as the package)."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            node.body = []  # annotations only
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import passes` names a module; `from .engine import Config` names a member.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    deps = {module_name(p): imports_of(p, module_name(p), modules) for p in paths}
    # A package depends on nothing by being a package; its modules import what they need.
    return deps


def circles(deps: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(deps.get(v, ())):
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
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


def bottom_up(deps: dict[str, set[str]]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()

    def place(v: str, path: tuple[str, ...]) -> None:
        if v in seen or v in path:
            return
        for w in sorted(deps.get(v, ())):
            place(w, path + (v,))
        seen.add(v)
        done.append(v)

    for v in sorted(deps):
        place(v, ())
    return done


def main() -> int:
    deps = graph()
    for module in bottom_up(deps):
        inside = sorted(d for d in deps[module])
        print(f"{module:<32} <- {', '.join(inside) if inside else '(nothing of the package)'}")
    found = circles(deps)
    print()
    if found:
        for component in found:
            print("circle: " + " <-> ".join(component))
        return 1
    print(f"{len(deps)} modules, no circle: every import runs one way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
