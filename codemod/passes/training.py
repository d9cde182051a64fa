"""Whether a module is known to be in torch's training mode at a point of the program: built here
(a layer, a container of such, what a same-file function returns), bound to a name nothing put in
another mode since, or a list filled with such. modes.py relies on it where ``set_train()`` on a
container or a module built around others would set them too."""

from __future__ import annotations

import ast

from ..facts.inference import (
    MODE_METHODS,
    SELF_RETURNING,
    FunctionT,
    MaybeLayerT,
    ModuleT,
    rebinds_itself,
)
from ..facts.scopes import Scope
from ..migration import Migration
from .sinks import (
    COLLECTING,
    REGISTRATION_METHODS,
    is_collection_call,
    is_container,
    statement_scope,
)


def leaves(mig: Migration, call: ast.Call, scope: Scope):
    """The expressions a construction takes as its modules: its arguments, through displays,
    comprehensions, conditional expressions and list()/OrderedDict(...) calls."""
    stack = [*call.args, *(k.value for k in call.keywords)]
    while stack:
        e = stack.pop(0)
        if isinstance(e, (ast.List, ast.Tuple, ast.Set)):
            stack.extend(e.elts)
        elif isinstance(e, ast.Dict):
            stack.extend(e.values)
        elif isinstance(e, ast.Starred):
            stack.append(e.value)
        elif isinstance(e, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            stack.append(e.elt)
        elif isinstance(e, ast.DictComp):
            stack.append(e.value)
        elif isinstance(e, ast.IfExp):
            stack.extend((e.body, e.orelse))
        elif isinstance(e, ast.BoolOp):
            stack.extend(e.values)
        elif isinstance(e, ast.Call) and is_collection_call(mig, e, scope):
            stack.extend([*e.args, *(k.value for k in e.keywords)])
        else:
            yield e


def in_training(mig: Migration, expr: ast.expr, scope: Scope, depth: int = 0) -> bool:
    """Whether ``expr`` is known to be a module in torch's training mode (or no module at all)."""
    if isinstance(expr, ast.Constant) or depth > 20:
        return isinstance(expr, ast.Constant)
    if isinstance(expr, ast.Name):
        return _trained_name(mig, expr, scope, depth)
    if isinstance(expr, ast.IfExp):  # bn = nn.BatchNorm1d(4) if c else nn.LayerNorm(4)
        return in_training(mig, expr.body, scope, depth + 1) and in_training(mig, expr.orelse, scope, depth + 1)
    if isinstance(expr, ast.BoolOp):
        return all(in_training(mig, v, scope, depth + 1) for v in expr.values)
    if not isinstance(expr, ast.Call):
        return False
    node = expr
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SELF_RETURNING:
        if node.func.attr in MODE_METHODS:
            return node.func.attr != "eval" and is_true(node)  # the last mode call decides
        node = node.func.value
    if not isinstance(node, ast.Call):
        return False
    types = mig.types
    callee = None if mig.ref(node.func) is not None else types.of(node.func, scope)
    if isinstance(callee, FunctionT):
        # A same-file function: what it returns is in training mode if each value it returns is.
        fn_scope = mig.index.scope_of.get(id(callee.node))
        if fn_scope is None:
            return False
        values = [callee.node.body] if isinstance(callee.node, ast.Lambda) else [r.value for r in fn_scope.returns]
        return bool(values) and all(v is not None and in_training(mig, v, fn_scope, depth + 1) for v in values)
    if types.fresh(node, scope):
        t = types.of(node, scope)
        if isinstance(t, ModuleT) and t.container:
            return all(in_training(mig, leaf, scope, depth + 1) for leaf in leaves(mig, node, scope))
        if isinstance(t, ModuleT) and t.cls is not None:  # what it is given may be in eval mode
            return all(in_training(mig, leaf, scope, depth + 1) for leaf in leaves(mig, node, scope)
                       if isinstance(types.of(leaf, scope), (ModuleT, MaybeLayerT)))
        return True
    # Other classes built here: torch's own (nn.ReLU()), MindSpore's (a file migrated part way).
    ref = mig.ref(node.func)
    qual = ref.qual if ref is not None else mig.qualified(node.func, scope)
    last = (qual or "").rsplit(".", 1)[-1]
    return bool(qual) and qual.split(".", 1)[0] in ("torch", "mindspore") and last[:1].isupper()


def _trained_name(mig: Migration, name: ast.Name, scope: Scope, depth: int) -> bool:
    """Whether ``name`` holds a module built in training mode whose mode nothing can have changed
    before this point: bound once in this scope to such a construction, earlier, and since then
    only called (``bn(x)``), read (``bn.weight``) or registered."""
    home = statement_scope(scope)
    found = scope.resolve(name.id)
    if found is None or found[0] is not home:
        return False
    if any(_is_list_binding(mig, b) for b in found[1]):
        return _trained_list(mig, name, found[1], home, depth)
    here = (name.lineno, name.col_offset)
    # One binding, or one per branch (``if ...: block = A(...) else: block = B(...)``); those after
    # this point do not matter, and ``bn = bn.to(device)`` is the same module.
    bindings = [b for b in found[1] if (b.node.lineno, b.node.col_offset) < here]
    values = {id(b): b.value if b.value is not None else _unpacked_value(mig, b) for b in bindings}
    statements = {id(b): b.stmt if b.stmt is not None else mig.index.statement_of(b.node) for b in bindings}
    if any(b.kind != "assign" or values[id(b)] is None or statements[id(b)] is None for b in bindings) \
            or not bindings:
        return False
    rebound = [b for b in bindings if rebinds_itself(b)]
    if any(not _keeps_training(b.value) for b in rebound):
        return False  # bn = bn.eval()
    bindings = [b for b in bindings if b not in rebound]
    if not bindings:
        return False
    start = min((statements[id(b)].end_lineno, statements[id(b)].end_col_offset) for b in bindings)
    if any((statements[id(b)].end_lineno, statements[id(b)].end_col_offset) > here for b in bindings):
        return False
    if not all(in_training(mig, values[id(b)], home, depth + 1) for b in bindings):
        return False
    for anc in mig.index.ancestors(name):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)):
            break
        if isinstance(anc, (ast.For, ast.AsyncFor, ast.While)) and not all(contains(anc, statements[id(b)]) for b in bindings):
            return False  # built before a loop that wraps it again and again
    for load, s in mig.index.loads.get(name.id, ()):
        if load is name:
            continue
        found = s.resolve(name.id)
        if found is None or found[0] is not home:
            continue
        if statement_scope(s) is not home:
            return False  # used in a function that may run at any time
        pos = (load.lineno, load.col_offset)
        if not (start <= pos < here):
            continue
        if not _harmless(mig, load, s):
            return False
    return True


def _unpacked_value(mig: Migration, b) -> ast.expr | None:
    """``bn0`` of ``bn0, bn1 = nn.BatchNorm2d(4), nn.LayerNorm(4)``: the element assigned to it."""
    target = mig.parent(b.node)
    stmt = mig.parent(target)
    if not (isinstance(target, (ast.Tuple, ast.List)) and isinstance(stmt, ast.Assign) and stmt.targets == [target]
            and isinstance(stmt.value, (ast.Tuple, ast.List)) and len(stmt.value.elts) == len(target.elts)
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *stmt.value.elts))):
        return None
    return stmt.value.elts[target.elts.index(b.node)]


def _keeps_training(value: ast.Call) -> bool:
    """``bn.to(device)``, ``bn.train()``: self-returning calls that leave (or put) it in training mode."""
    node = value
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SELF_RETURNING:
        if node.func.attr in MODE_METHODS:
            return node.func.attr != "eval" and is_true(node)
        node = node.func.value
    return True


def _is_list_binding(mig: Migration, b) -> bool:
    """``layers = []`` (a display, list()/OrderedDict()) or ``layers += [...]``."""
    if b.kind != "assign":
        return False
    if b.value is None:
        stmt = mig.parent(b.node)
        return isinstance(stmt, ast.AugAssign) and stmt.target is b.node
    return isinstance(b.value, (ast.List, ast.Tuple, ast.Dict)) or (
        isinstance(b.value, ast.Call) and not b.value.args and not b.value.keywords
        and is_collection_call(mig, b.value, b.scope))


def _trained_list(mig: Migration, name: ast.Name, bindings: list, home: Scope, depth: int) -> bool:
    """Whether every module put in the list ``name`` before this point (by its displays, ``+=``,
    ``append``/``extend``/``insert`` or item assignment) is known to be in training mode."""
    here = (name.lineno, name.col_offset)
    added: list[ast.expr] = []
    for b in bindings:
        if not _is_list_binding(mig, b):
            return False
        added.append(b.value if b.value is not None else mig.parent(b.node).value)
    for load, s in mig.index.loads.get(name.id, ()):
        found = s.resolve(name.id)
        if load is name or found is None or found[0] is not home:
            continue
        if statement_scope(s) is not home:
            return False
        if (load.lineno, load.col_offset) >= here:
            continue
        parent = mig.parent(load)
        call = mig.parent(parent)
        if isinstance(parent, ast.Attribute) and parent.attr in COLLECTING and isinstance(call, ast.Call) \
                and call.func is parent:
            added.extend(call.args[1:] if parent.attr == "insert" else call.args)
        elif isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store) and isinstance(call, ast.Assign):
            added.append(call.value)
        elif not (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "len"):
            return False
    leaves = []
    for value in added:
        if isinstance(value, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            stack = list(value.values if isinstance(value, ast.Dict) else value.elts)
            leaves.extend(stack)
        else:
            leaves.append(value)
    return all(in_training(mig, leaf, home, depth + 1) for leaf in leaves)


def _harmless(mig: Migration, load: ast.Name, scope: Scope) -> bool:
    """A use that cannot change the mode: a call of the module, an attribute read, a registration."""
    parent = mig.parent(load)
    if isinstance(parent, ast.Call):
        return parent.func is load or is_registration(mig, parent, scope) or is_container(mig, parent, scope)
    if isinstance(parent, ast.keyword):
        call = mig.parent(parent)
        return isinstance(call, ast.Call) and (is_registration(mig, call, scope) or is_container(mig, call, scope))
    if isinstance(parent, ast.Attribute) and parent.value is load:
        call = mig.parent(parent)
        if isinstance(call, ast.Call) and call.func is parent:
            if parent.attr in ("train", "set_train"):
                return is_true(call)  # sets what it already is (also: the set_train() this tool inserts)
            return parent.attr in ("forward", "__call__")
        return isinstance(parent.ctx, ast.Load)
    if isinstance(parent, (ast.List, ast.Tuple)):
        return True  # stored in a collection (its uses are checked where the collection goes)
    return isinstance(parent, (ast.Compare, ast.BoolOp, ast.UnaryOp))


def contains(outer: ast.AST, inner: ast.AST) -> bool:
    return (outer.lineno, outer.col_offset) <= (inner.lineno, inner.col_offset) and \
        (inner.end_lineno, inner.end_col_offset) <= (outer.end_lineno, outer.end_col_offset)


def is_registration(mig: Migration, call: ast.Call, scope: Scope) -> bool:
    func = call.func
    ref = mig.ref(func)
    if ref is not None:
        name = mig.rules.names.get(ref.qual)
        return name is not None and name.kind == "container"
    qual = mig.qualified(func, scope)
    if qual is not None:  # a MindSpore container (a file migrated part way)
        return qual in {n.mindspore for n in mig.rules.names.values() if n.kind == "container"}
    if isinstance(func, ast.Name) and func.id in ("isinstance", "id", "type", "print", "repr", "str", "len"):
        return True  # looks at the object, does not run it
    return isinstance(func, ast.Attribute) and func.attr in REGISTRATION_METHODS


def is_true(call: ast.Call) -> bool:
    values = [*call.args, *(k.value for k in call.keywords)]
    return not values or (len(values) == 1 and isinstance(values[0], ast.Constant) and values[0].value is True)
