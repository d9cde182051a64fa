"""The module skeleton: ``forward`` becomes ``construct`` in classes that become Cells (the
definition, ``self.forward(...)``, ``super().forward(...)``, and ``x.forward`` on known modules).
``nn.Module`` -> ``nn.Cell`` and the containers are name mappings (see references.py)."""

from __future__ import annotations

import ast
import re

from ..engine import Migration
from ..inference import MaybeLayerT, ModuleT, origin_of

_REGISTRATION = ("add_module", "register_module")
_DEF_NAME = re.compile(r"(?:async\s+)?def\s+(forward)\b")


def plan_skeleton(mig: Migration) -> None:
    types = mig.types
    for cls in types.module_classes():
        fn = cls.methods.get("forward")
        if fn is None:
            continue
        line = mig.text.line_text(fn.lineno)
        col = mig.text.char_col(fn.lineno, fn.col_offset)
        m = _DEF_NAME.match(line, col)
        if m is None:
            continue
        site = mig.site("skeleton", fn, message=f"{cls.name}.forward -> construct")
        site.requires |= cls.origin
        start = mig.text.line_starts[fn.lineno - 1] + m.start(1)
        mig.edit(site, start, start + len("forward"), "construct")
    for attr, scope in mig.index.attributes:
        if attr.attr in _REGISTRATION:
            _registration(mig, types, attr, scope)
            continue
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
        end = mig.text.end(attr)
        mig.edit(site, end - len("forward"), end, "construct")


def _registration(mig: Migration, types, attr: ast.Attribute, scope) -> None:
    """``m.add_module(name, child)`` / ``m.register_module(...)``: MindSpore's Cell spells it
    ``insert_child_to_cell(name, child)`` (same arguments)."""
    call = mig.parent(attr)
    if not (isinstance(call, ast.Call) and call.func is attr):
        return
    value = attr.value
    if _is_super_call(value):
        cls = _enclosing_class(mig, types, attr)
        known, origin = (cls is not None and cls.is_module), (cls.origin if cls is not None else frozenset())
    else:
        t = types.of(value, scope)
        known, origin = isinstance(t, (ModuleT, MaybeLayerT)), origin_of(t)
    if not known:
        return
    site = mig.site("skeleton", attr, message=f"{attr.attr} -> insert_child_to_cell")
    site.requires |= origin
    end = mig.text.end(attr)
    mig.edit(site, end - len(attr.attr), end, "insert_child_to_cell")


def _is_super_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _enclosing_class(mig: Migration, types, node: ast.AST):
    p = mig.parent(node)
    while p is not None:
        if isinstance(p, ast.ClassDef):
            return types.classes.get(id(p))
        p = mig.parent(p)
    return None
