"""The module skeleton: ``forward`` becomes ``construct`` in classes that become Cells (the
definition, ``self.forward(...)``, ``super().forward(...)``, and ``x.forward`` on known modules).
``nn.Module`` -> ``nn.Cell`` and the containers are name mappings (see references.py)."""

from __future__ import annotations

import ast

from ..converters import escape
from ..facts.inference import MaybeLayerT, ModuleT, origin_of
from ..migration import Migration
from ..plan import Argument, RenameAttribute, RenameDefinition, ReplaceCall, Template

_REGISTRATION = ("add_module", "register_module")


def plan_skeleton(mig: Migration) -> None:
    types = mig.types
    for cls in types.module_classes():
        fn = cls.methods.get("forward")
        if fn is None:
            continue
        site = mig.site("skeleton", fn, message=f"{cls.name}.forward -> construct")
        site.requires |= cls.origin
        mig.change(site, RenameDefinition(site.id, mig.key(fn), "construct"))
    module_methods = mig.rules.module_methods
    for attr, scope in mig.index.attributes:
        if attr.attr in _REGISTRATION:
            _registration(mig, types, attr, scope)
            continue
        if attr.attr in module_methods:
            _module_method(mig, types, attr, scope, module_methods[attr.attr])
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
        mig.change(site, RenameAttribute(site.id, mig.key(attr), "construct"))


def _registration(mig: Migration, types, attr: ast.Attribute, scope) -> None:
    """``m.add_module(name, child)`` / ``m.register_module(...)``: MindSpore's Cell has neither;
    ``setattr(m, name, child)`` registers the child under ``name`` as the attribute assignment does,
    parameter names included (``insert_child_to_cell`` leaves them without the prefix, so two
    children's parameters collide and checkpoints do not load)."""
    call = mig.parent(attr)
    if not (isinstance(call, ast.Call) and call.func is attr):
        return
    value = attr.value
    if _is_super_call(value):
        cls = _enclosing_class(mig, types, attr)
        known, origin = (cls is not None and cls.is_module), (cls.origin if cls is not None else frozenset())
        fn = _enclosing_function(mig, attr)
        args = fn.args.posonlyargs + fn.args.args if fn is not None else []
        receiver = args[0].arg if args else None  # setattr(super(), ...) would not register it
    else:
        t = types.of(value, scope)
        known, origin = isinstance(t, (ModuleT, MaybeLayerT)), origin_of(t)
        receiver = mig.text.segment(value)
    if not known or receiver is None or len(call.args) != 2 or call.keywords \
            or any(isinstance(a, ast.Starred) for a in call.args):
        return
    site = mig.site("skeleton", attr, message=f"{attr.attr}(...) -> setattr({receiver}, ...)")
    site.requires |= origin
    # The arguments as migrated (a child built inline converts too).
    arguments = (Argument("name", keyword="name"), Argument("module", keyword="module"))
    mig.change(site, ReplaceCall(site.id, mig.key(call),
                                 Template(f"setattr({escape(receiver)}, {{arg:name}}, {{arg:module}})"), arguments))


def _module_method(mig: Migration, types, attr: ast.Attribute, scope, template: str) -> None:
    """``net.modules()`` & co. on a known module: the Cell's spelling (rules/modules.toml); with
    arguments, a finding (the Cell methods take none of torch's)."""
    call = mig.parent(attr)
    if not (isinstance(call, ast.Call) and call.func is attr) or _is_super_call(attr.value):
        return
    t = types.of(attr.value, scope)
    if not isinstance(t, (ModuleT, MaybeLayerT)):
        return
    site = mig.site("skeleton", attr, message=f"{attr.attr}() -> {template.replace('{receiver}', 'cell')}")
    site.requires |= origin_of(t)
    if call.args or call.keywords:
        mig.unconverted(site, "TM003", call, f"{attr.attr}() with arguments: MindSpore's Cell has no "
                                             f"{attr.attr}; its counterpart takes none of them")
        return
    mig.change(site, ReplaceCall(site.id, mig.key(call), Template(template)))


def _enclosing_function(mig: Migration, node: ast.AST):
    p = mig.parent(node)
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
        p = mig.parent(p)
    return p


def _is_super_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _enclosing_class(mig: Migration, types, node: ast.AST):
    p = mig.parent(node)
    while p is not None:
        if isinstance(p, ast.ClassDef):
            return types.classes.get(id(p))
        p = mig.parent(p)
    return None
