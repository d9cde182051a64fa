"""A model whose file imports from its project (``from .blocks import Block``): the files it needs,
found through the project's imports, migrated together (each with the project's knowledge, as
``torch2ms migrate`` does), and imported as the packages they are: the original from where it lies,
the migration from a temporary copy of the same tree."""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import sys
import tempfile
from dataclasses import dataclass

from .facts.project import Project, absolute_module


@dataclass(frozen=True)
class ProjectFiles:
    base: str  # the directory the model's top-level package (or module) is imported from
    module: str  # the dotted name of the model's file
    files: tuple[str, ...]  # the files it needs, absolute: the imports it follows, and their packages

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.base)

    @property
    def tops(self) -> frozenset[str]:
        """The top-level names these files are imported under (cleared from sys.modules around a run)."""
        return frozenset(self.relative(f).split(os.sep)[0].rsplit(".", 1)[0] for f in self.files)


def project_imports(tree: ast.Module, path: str | None, project) -> list[str]:
    """The modules ``tree`` imports from other files of its project (any relative import is one)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.append("." * node.level + (node.module or ""))
        elif project is not None and path is not None:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found.extend(n for n in names if project.layout.find(n, path) is not None)
    return list(dict.fromkeys(found))


def needed_files(path: str, project: Project) -> ProjectFiles | None:
    """The files of ``project`` that importing the model's file ``path`` runs; None when the file is
    not importable by a dotted name under the project's roots."""
    layout = project.layout
    path = os.path.abspath(path)
    module, _ = layout.module_of(path)
    if module is None:
        return None
    base = next(b for b in sorted(layout.search, key=len, reverse=True) if path.startswith(b + os.sep))
    found: list[str] = []
    pending = [path]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.append(current)
        pending.extend(_packages_of(current, base))
        text = project.text(current)
        if text is None:
            continue
        try:
            tree = ast.parse(text.lstrip("\ufeff"))
        except SyntaxError:
            continue
        name, is_package = layout.module_of(current)
        package = name if is_package else (name.rpartition(".")[0] if name else None)
        for target in _imported(tree, package):
            where = layout.find(target, current)
            if isinstance(where, str) and where.startswith(base + os.sep):
                pending.append(where)
    return ProjectFiles(base, module, tuple(sorted(found)))


def _imported(tree: ast.Module, package: str | None) -> list[str]:
    """Dotted names the module imports (``from pkg import mod`` names both ``pkg`` and ``pkg.mod``)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = absolute_module(node.module, node.level, package)
            if target is None:
                continue
            names.append(target)
            names.extend(f"{target}.{a.name}" for a in node.names if a.name != "*")
    return names


def _packages_of(path: str, base: str) -> list[str]:
    """The ``__init__.py`` of every package the file is in (importing it runs them)."""
    out = []
    directory = os.path.dirname(path)
    while directory.startswith(base + os.sep):
        init = os.path.join(directory, "__init__.py")
        if os.path.exists(init):
            out.append(init)
        directory = os.path.dirname(directory)
    return out


@contextlib.contextmanager
def imported(base: str, module: str, tops: frozenset[str]):
    """Import ``module`` from the directory ``base`` as a fresh package tree (nothing of the same
    names cached before or kept after)."""

    def clear() -> None:
        for name in [n for n in sys.modules if n.split(".")[0] in tops]:
            del sys.modules[name]

    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in tops}
    clear()
    sys.path.insert(0, base)
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(module)
    finally:
        sys.path.remove(base)
        clear()
        sys.modules.update(saved)


@contextlib.contextmanager
def written_tree(files: ProjectFiles, codes: dict[str, str]):
    """A temporary directory holding ``codes`` (file -> migrated text) at the files' places under it."""
    with tempfile.TemporaryDirectory(prefix="torch2ms-model-") as holder:
        for path in files.files:
            target = os.path.join(holder, files.relative(path))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(codes[path])
        yield holder
