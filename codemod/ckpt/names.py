"""Which names of one file are the torch or MindSpore names the rules know, spelled as torch's.

A model's structure reads the same in the original PyTorch source and in its migration:
``mindspore.nn.BatchNorm3d`` is the layer torch calls ``torch.nn.BatchNorm3d`` (the rules say so),
``nn.Cell`` is ``nn.Module``, ``nn.SequentialCell`` is ``nn.Sequential``. So the references of both
frameworks are given the torch names of the rules, and the engine's module inference (``Types``)
and the structure reader run on either file unchanged. A file part way through its migration has
both.

This is the part of the engine's ``Migration`` the inference asks for (``rules``, ``index``,
``ref``, ``qualified``, ``parent``, ``project``), without the rest of a migration (sites, edits,
findings).
"""

from __future__ import annotations

import ast

from ..facts.inference import Types
from ..facts.references import TorchRef, is_mindspore, torch_references
from ..facts.scopes import Index, dotted_chain
from ..ruleset import LayerRule, RuleSet


def mindspore_names(rules: RuleSet) -> dict[str, tuple[str, ...]]:
    """MindSpore name -> the torch names the rules map to it (layers, module base, containers)."""
    out: dict[str, list[str]] = {}
    for rule in rules.layers.values():
        if rule.kind == "layer":
            out.setdefault(rule.mindspore, []).append(rule.torch)
    for name in rules.names.values():
        out.setdefault(name.mindspore, []).append(name.torch)
    return {ms: tuple(sorted(torch)) for ms, torch in out.items()}


class FileAnalysis:
    """The names of one parsed file and the module inference over them."""

    def __init__(self, tree: ast.Module, rules: RuleSet):
        self.rules = rules
        # Each file is read alone: the structure reader follows classes across the files of a
        # source directory itself (structure.SourceModel).
        self.project = None
        self.index = Index(tree)
        known = rules.layers.keys() | rules.names.keys() | rules.dtypes.keys()
        torch_refs, _, _ = torch_references(self.index, rules.canonical, known.__contains__)
        self._as_torch = mindspore_names(rules)
        ms_refs = self._mindspore_references()
        self.mindspore_nodes = {id(r.node) for r in ms_refs}
        self.ref_by_node: dict[int, TorchRef] = {id(r.node): r for r in [*torch_refs, *ms_refs]}
        self.types = Types(self)

    def torch_names(self) -> list[str]:
        """The torch names the file still uses (none in a file migrated all the way)."""
        return sorted({r.qual for key, r in self.ref_by_node.items() if key not in self.mindspore_nodes})

    # -- what the inference asks for --------------------------------------------------------------

    def ref(self, node: ast.AST) -> TorchRef | None:
        return self.ref_by_node.get(id(node))

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.index.parents.get(node)

    def qualified(self, node: ast.expr, scope) -> str | None:
        """The dotted name an expression spells through the file's imports (any module), if any."""
        parts = dotted_chain(node)
        found = scope.resolve(parts[0]) if parts else None
        if found is None or not all(b.kind == "import" and b.qual for b in found[1]):
            return None
        if len({b.qual for b in found[1]}) != 1:
            return None
        return ".".join([found[1][0].qual, *parts[1:]])

    # -- MindSpore's names --------------------------------------------------------------------------

    def candidates(self, qual: str) -> tuple[LayerRule, ...]:
        """The torch layers a MindSpore name stands for when the rules map several to it."""
        return tuple(self.rules.layers[t] for t in self._as_torch.get(qual, ()) if t in self.rules.layers)

    def _known(self, qual: str) -> str | None:
        """The torch name of a MindSpore name the rules know; the MindSpore name itself when they
        know it as several layers whose attributes differ (``candidates`` says which); else None."""
        if qual not in self._as_torch and qual.startswith("mindspore.nn."):
            # mindspore.nn re-exports its layers: mindspore.nn.layer.normalization.BatchNorm2d is nn.BatchNorm2d.
            qual = f"mindspore.nn.{qual.rsplit('.', 1)[1]}"
        torch = self._as_torch.get(qual)
        if torch is None:
            return None
        attributes = {tuple(self.rules.layers[t].attributes.items()) if t in self.rules.layers else t for t in torch}
        return torch[0] if len(attributes) == 1 else qual

    def _mindspore_references(self) -> list[TorchRef]:
        """Every load of a MindSpore import, as the longest dotted chain the rules know (spelled as
        the torch name), else the whole chain (spelled as MindSpore's). A name bound to a MindSpore
        import and to anything else in the same scope is left alone: flow decides which one a use means."""
        index = self.index
        refs: list[TorchRef] = []
        done: set[tuple[int, str]] = set()
        for binding in index.imports:
            key = (id(binding.scope), binding.name)
            if not is_mindspore(binding.qual) or key in done:
                continue
            done.add(key)
            if any(b.kind != "import" or b.qual != binding.qual for b in binding.scope.bindings[binding.name]):
                continue
            for load, scope in index.loads.get(binding.name, ()):
                found = scope.resolve(binding.name)
                if found is None or found[0] is not binding.scope:
                    continue
                node, qual = self._longest_known(load, binding.qual)
                refs.append(TorchRef(node, load, qual, None, scope))
        # `from mindspore.nn import *`: the names the rules know, where nothing else binds them.
        stars = [m for m, _ in index.module_scope.star_imports if is_mindspore(m)]
        for module in stars:
            for name, loads in index.loads.items():
                if self._known(f"{module}.{name}") is None:
                    continue
                for load, scope in loads:
                    if scope.resolve(name) is None:
                        node, qual = self._longest_known(load, f"{module}.{name}")
                        refs.append(TorchRef(node, load, qual, None, scope))
        return refs

    def _longest_known(self, load: ast.Name, qual: str) -> tuple[ast.expr, str]:
        """As the engine reads torch names: the longest known prefix of ``a.b.c``, else the whole chain."""
        node: ast.expr = load
        best = None
        while True:
            known = self._known(qual)
            if known is not None:
                best = (node, known)
            elif best is not None:
                break
            p = self.index.parents.get(node)
            if type(p) is not ast.Attribute or p.value is not node:
                break
            node, qual = p, f"{qual}.{p.attr}"
        return best or (node, qual)
