"""The module skeleton: ``forward`` becomes ``construct`` in classes that become Cells (the
definition, ``self.forward(...)``, ``super().forward(...)``, and ``x.forward`` on known modules).
``nn.Module`` -> ``nn.Cell`` and the containers are name mappings (see references.py)."""

from __future__ import annotations

import ast

from ..facts.inference import MaybeLayerT, ModuleT, origin_of
from ..migration import Migration
from ..plan import RenameAttribute, RenameDefinition


def plan_skeleton(mig: Migration) -> None:
    types = mig.types
    for cls in types.module_classes():
        fn = cls.methods.get("forward")
        if fn is None:
            continue
        site = mig.site("skeleton", fn, message=f"{cls.name}.forward -> construct")
        site.requires |= cls.origin
        mig.change(site, RenameDefinition(site.id, mig.key(fn), "construct"))
    for attr, scope in mig.index.attributes:
        if attr.attr != "forward":
            continue
        value = attr.value
        if _is_super_call(value):
            cls = _enclosing_class(mig, types, attr)
            known = cls is not None and cls.is_module
            origin = cls.origin if known else frozenset()
        else:
            t = types.of(value, scope)
            known = isinstance(t, (ModuleT, MaybeLayerT))
            origin = origin_of(t)
        if not known:
            continue
        site = mig.site("skeleton", attr, message="forward -> construct")
        site.requires |= origin
        mig.change(site, RenameAttribute(site.id, mig.key(attr), "construct"))


def _is_super_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _enclosing_class(mig: Migration, types, node: ast.AST):
    p = mig.parent(node)
    while p is not None:
        if isinstance(p, ast.ClassDef):
            return types.classes.get(id(p))
        p = mig.parent(p)
    return None
