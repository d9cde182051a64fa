"""Keyword dicts the file builds itself: ``dd = {'device': device, 'dtype': dtype}`` a few lines up,
then ``nn.BatchNorm2d(c, **dd)``. When every key of the dict is visible and nothing can change it
(or what its values name) before the call, the call is converted as if its entries were written
there; otherwise the call stays as it is (TM002)."""

from __future__ import annotations

import ast

from ..facts.scopes import Scope
from ..migration import Migration

# Expressions that evaluate to the same value wherever they are written again: no call, no side effect.
_PURE = (ast.Name, ast.Attribute, ast.Constant, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp,
         ast.Tuple, ast.Load, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)
# Reads of a dict that cannot change it.
_READING_METHODS = frozenset({"get", "keys", "values", "items", "copy", "__contains__"})


def entries(mig: Migration, keyword: ast.keyword, call: ast.Call) -> list[tuple[str, ast.expr]] | str:
    """The (key, value) pairs ``**name`` stands for, or why they cannot be known here."""
    name = keyword.value
    if not isinstance(name, ast.Name):
        return f"**{mig.text.segment(name)} is not a dict this file builds"
    scope = mig.scope_of_load(name)
    found = scope.resolve(name.id) if scope is not None else None
    if found is None:
        return f"{name.id} is not defined here"
    where, bindings = found
    if len(bindings) != 1 or bindings[0].kind != "assign" or bindings[0].value is None or where is not scope:
        return f"{name.id} is not one dict assigned once in this scope"
    stmt, built = bindings[0].stmt, bindings[0].value
    pairs = _literal_pairs(mig, built, where)
    if pairs is None:
        return f"the keys of {name.id} are not all visible (a dict display or dict(...) with literal keys)"
    if (stmt.end_lineno, stmt.end_col_offset) > (call.lineno, call.col_offset):
        return f"{name.id} is assigned after the call"
    reason = _only_read(mig, name.id, where)
    if reason:
        return reason
    for _key, value in pairs:
        if not all(isinstance(n, _PURE) for n in ast.walk(value)):
            return f"{name.id}[...] = {mig.text.segment(value)} is not a plain value (it would be evaluated again)"
        for used in (n for n in ast.walk(value) if isinstance(n, ast.Name)):
            if _rebound_between(mig, used, where, stmt, call):
                return f"{used.id}, which {name.id} holds, is assigned again before the call"
    return pairs


def is_dict(mig: Migration, name: ast.expr) -> bool:
    """Whether ``name`` is a dict this file builds (for ``*dd`` written where ``**dd`` was meant)."""
    if not isinstance(name, ast.Name):
        return False
    scope = mig.scope_of_load(name)
    found = scope.resolve(name.id) if scope is not None else None
    return (found is not None and len(found[1]) == 1 and found[1][0].value is not None
            and _literal_pairs(mig, found[1][0].value, found[0]) is not None)


def _literal_pairs(mig: Migration, built: ast.expr, scope: Scope) -> list[tuple[str, ast.expr]] | None:
    if isinstance(built, ast.Dict):
        if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in built.keys):
            return None  # a ** inside, or a computed key
        return [(k.value, v) for k, v in zip(built.keys, built.values)]
    if (isinstance(built, ast.Call) and isinstance(built.func, ast.Name) and built.func.id == "dict"
            and scope.resolve("dict") is None and not built.args and all(k.arg for k in built.keywords)):
        return [(k.arg, k.value) for k in built.keywords]
    return None


def _only_read(mig: Migration, name: str, scope: Scope) -> str | None:
    """Why the dict may change after it is built, if it may: every use must unpack or read it."""
    for node, s in mig.index.loads.get(name, ()):
        found = s.resolve(name)
        if found is None or found[0] is not scope:
            continue
        parent = mig.parent(node)
        if isinstance(parent, ast.keyword) and parent.arg is None:
            continue  # **name in a call
        if isinstance(parent, ast.Dict) and node in parent.values and parent.keys[parent.values.index(node)] is None:
            continue  # {**name}
        if isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, ast.Load):
            continue  # name["key"]
        if (isinstance(parent, ast.Attribute) and parent.attr in _READING_METHODS
                and isinstance(mig.parent(parent), ast.Call) and mig.parent(parent).func is parent):
            continue  # name.get("key")
        return f"{name} is used otherwise than read (line {node.lineno}): it may change before the call"
    return None


def _rebound_between(mig: Migration, used: ast.Name, scope: Scope, stmt: ast.stmt, call: ast.Call) -> bool:
    found = scope.resolve(used.id)
    if found is None:
        return False  # a builtin
    where, bindings = found
    if where is not scope:
        return len(bindings) != 1  # from an enclosing scope: fine only if bound once
    after, before = (stmt.end_lineno, stmt.end_col_offset), (call.lineno, call.col_offset)
    for b in bindings:
        pos = (b.node.lineno, b.node.col_offset) if hasattr(b.node, "lineno") else None
        if pos is not None and after <= pos < before:
            return True
    return False
