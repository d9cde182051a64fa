"""Which expressions in a module mean torch names: every load that resolves (by Python's scoping
rules, see scopes.py) to a torch import, canonicalised (``torch.nn.modules.batchnorm.BatchNorm2d`` is
``torch.nn.BatchNorm2d``), grouped by the import that brings the name in."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

from .scopes import Binding, Index, Scope


@dataclass
class TorchRef:
    """An expression that names a torch object: ``node`` spells ``qual`` (canonical)."""

    node: ast.expr
    root: ast.Name
    qual: str
    group: "ImportGroup"
    scope: Scope


@dataclass
class AmbiguousRef:
    node: ast.expr
    qual: str
    scope: Scope


class ImportGroup:
    """The torch import bindings of one name in one scope (``import torch`` twice is one group)."""

    def __init__(self, name: str, qual: str, scope: Scope, bindings: list[Binding],
                 star: ast.ImportFrom | None = None):
        self.name = name
        self.qual = qual
        self.scope = scope
        self.bindings = bindings
        self.star = star  # the name comes from `from torch.nn import *` (no binding of its own)
        self.refs: list[TorchRef] = []
        self.ambiguous_uses = 0

    @property
    def first(self) -> Binding:
        return self.bindings[0]

    @property
    def anchor(self) -> ast.stmt:
        """The import statement that brings the name in: new imports go right after it."""
        return self.bindings[0].stmt if self.bindings else self.star

    def __repr__(self) -> str:
        return f"ImportGroup({self.name!r} -> {self.qual!r})"


def is_torch(qual: str | None) -> bool:
    return bool(qual) and (qual == "torch" or qual.startswith("torch."))


def is_mindspore(qual: str | None) -> bool:
    return bool(qual) and (qual == "mindspore" or qual.startswith("mindspore."))


def torch_references(index: Index, canonical, known) -> tuple[list[TorchRef], list[AmbiguousRef], list[ImportGroup]]:
    """Every load in the module that resolves to a torch import.

    ``canonical`` maps re-export paths to public names; ``known(qual)`` says whether a qualified
    name is one the rules know, so that ``nn.SyncBatchNorm.convert_sync_batchnorm`` yields the
    class reference and not the whole chain.
    """
    # The same qualified names come up again and again (every use of nn.BatchNorm2d): look each up once.
    canonical = functools.cache(canonical)
    known = functools.cache(known)
    groups: dict[tuple[int, str], ImportGroup] = {}
    for b in index.imports:
        if is_torch(b.qual):
            key = (id(b.scope), b.name)
            if key not in groups:
                bindings = b.scope.bindings[b.name]
                torch_bindings = [x for x in bindings if x.kind == "import" and is_torch(x.qual)]
                groups[key] = ImportGroup(b.name, b.qual, b.scope, torch_bindings)
    star_scopes = [s for s in [index.module_scope, *index.scope_of.values()]
                   if s.star_imports and any(is_torch(m) for m, _ in s.star_imports)]

    # Names bound to torch and to something else in the same scope (or to two torch names): flow
    # decides which one a use means; we do not guess.
    mixed = {key for key, g in groups.items()
             if len(g.bindings) != len(g.scope.bindings[g.name]) or len({canonical(b.qual) for b in g.bindings}) > 1}

    refs: list[TorchRef] = []
    ambiguous: list[AmbiguousRef] = []
    names = {g.name for g in groups.values()}
    for name in names:
        for node, scope in index.loads.get(name, ()):
            found = scope.resolve(name)
            if found is None:
                continue
            key = (id(found[0]), name)
            group = groups.get(key)
            if group is None:
                continue
            chain_node, qual = _longest_known(index, node, group.qual, canonical, known)
            if key in mixed:
                group.ambiguous_uses += 1
                ambiguous.append(AmbiguousRef(chain_node, qual, scope))
                continue
            ref = TorchRef(chain_node, node, qual, group, scope)
            group.refs.append(ref)
            refs.append(ref)
    # `from torch.nn import *`: names the rules know, not bound otherwise.
    seen = {id(r.root) for r in refs} if star_scopes else set()
    for scope in star_scopes:
        # An explicit import placed after the last torch star import shadows the star's name.
        last_star = max((stmt for m, stmt in scope.star_imports if is_torch(m)),
                        key=lambda n: (n.lineno, n.col_offset))
        for module, _stmt in scope.star_imports:
            if not is_torch(module):
                continue
            for name, loads in index.loads.items():
                qual = canonical(f"{module}.{name}")
                if not known(qual):
                    continue
                for node, s in loads:
                    if s.resolve(name) is None and id(node) not in seen:
                        seen.add(id(node))
                        key = (id(scope), name)
                        group = groups.setdefault(key, ImportGroup(name, qual, scope, [], star=last_star))
                        chain_node, q = _longest_known(index, node, qual, canonical, known)
                        ref = TorchRef(chain_node, node, q, group, s)
                        group.refs.append(ref)
                        refs.append(ref)
    return refs, ambiguous, list(groups.values())


def _longest_known(index: Index, name_node: ast.Name, base_qual: str, canonical, known) -> tuple[ast.expr, str]:
    node: ast.expr = name_node
    raw = base_qual
    qual = canonical(raw)
    best = (node, qual)
    found = known(qual)
    while True:
        p = index.parents.get(node)
        if type(p) is not ast.Attribute or p.value is not node:
            break
        node = p
        raw = f"{raw}.{p.attr}"
        qual = canonical(raw)
        if known(qual):
            best, found = (node, qual), True
        elif found:
            break
    return best if found else (node, qual)
