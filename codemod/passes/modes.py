"""Training mode. A new torch Module is in training mode; a new MindSpore Cell is not.

``x.train()``/``x.eval()`` become ``x.set_train(...)`` on receivers known to be modules, and
``x.set_train()`` is inserted after ``x = <module construction>`` wherever the original used ``x``
before any explicit mode call: inserting it is always faithful (it restores torch's default), so
when in doubt it is inserted, and it is left out only where an explicit mode call provably comes
first.
"""

from __future__ import annotations

import ast

from ..facts.inference import SELF_RETURNING, ClassInfo, MaybeLayerT, ModuleT, origin_of
from ..facts.scopes import Scope
from ..migration import Migration
from ..plan import InsertStatement, SetMode, Template

SET_TRAIN = Template("{target}.set_train()")

MODE_METHODS = ("train", "eval", "set_train")
_MODE_METHOD_NAMES = frozenset(MODE_METHODS)
# Calls that register a module as a child of another: not a use of its own mode.
_REGISTRATION_METHODS = frozenset({"add_module", "register_module", "append", "extend", "insert", "update",
                                   "__setitem__", "setdefault"})
_NO_GRAD = ("torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad")


def plan_modes(mig: Migration) -> None:
    calls = _mode_method_calls(mig)
    _mode_calls(mig, calls)
    _insert_set_train(mig, calls)


def _mode_method_calls(mig: Migration) -> list[tuple[ast.Attribute, ast.Call, Scope]]:
    """Every ``x.train(...)``, ``x.eval(...)`` and ``x.set_train(...)`` call, in order."""
    parents = mig.index.parents
    calls = []
    for attr, scope in mig.index.attributes:
        if attr.attr in _MODE_METHOD_NAMES:
            call = parents.get(attr)
            if isinstance(call, ast.Call) and call.func is attr:
                calls.append((attr, call, scope))
    return calls


# -- x.train() / x.eval() ------------------------------------------------------------------------


def _mode_calls(mig: Migration, calls: list[tuple[ast.Attribute, ast.Call, Scope]]) -> None:
    types = mig.types
    for attr, call, scope in calls:
        if attr.attr == "set_train":
            continue
        receiver = types.of(attr.value, scope)
        if not isinstance(receiver, (ModuleT, MaybeLayerT)):
            if mig.in_scope:
                mig.finding("MD002", call, f"{mig.text.segment(attr.value)}.{attr.attr}() left alone: "
                                           f"the receiver is not known to be a module (MindSpore: .set_train(...))")
            continue
        if attr.attr == "eval" and (call.args or call.keywords):
            continue  # not Module.eval
        site = mig.site("mode", call)
        site.requires |= origin_of(receiver)
        mode = False if attr.attr == "eval" else True if _is_true(call) else None
        mig.change(site, SetMode(site.id, mig.key(call), mode))


def _is_true(call: ast.Call) -> bool:
    values = [*call.args, *(k.value for k in call.keywords)]
    return not values or (len(values) == 1 and isinstance(values[0], ast.Constant) and values[0].value is True)


# -- set_train() insertion ---------------------------------------------------------------------


def _insert_set_train(mig: Migration, calls: list[tuple[ast.Attribute, ast.Call, Scope]]) -> None:
    types = mig.types
    # The functions (lambdas, classes) whose own code calls a mode method: for MD004.
    mode_setters = {_owner(mig, call) for _, call, _ in calls}
    for stmt, target, value, scope in _assignments(mig):
        t = _fresh_construction(mig, value, scope)
        if t is None:
            continue
        if isinstance(target, ast.Attribute):
            owner = types.of(target.value, scope)
            if isinstance(owner, ModuleT):
                continue  # a child of another module: the parent's mode governs it
            first = "use"
            no_grad_only = False
        else:
            first, no_grad_only = _first_event(mig, target.id, stmt, scope)
        if first != "use":
            continue
        name = mig.text.segment(target)
        site = mig.site("set_train", stmt, message=f"insert `{name}.set_train()`")
        site.requires |= origin_of(t)
        site.target = name
        mig.change(site, InsertStatement(site.id, mig.key(stmt), SET_TRAIN))
        mig.finding("MD001", stmt, f"{name}.set_train() inserted: {name} is used before any explicit "
                                   f"train()/eval(), so the original ran it in torch's default training mode")
        if no_grad_only:
            mig.finding("MD003", stmt, f"{name} runs in torch's implicit training mode, but only under "
                                       f"no_grad()/inference_mode(): kept faithfully (batch statistics); "
                                       f"check whether {name}.eval() was meant")
        cls = t.cls if isinstance(t, ModuleT) else None
        if cls is not None and _sets_child_modes(cls, mode_setters):
            mig.finding("MD004", stmt, f"{cls.name}.__init__ sets modes of its children; "
                                       f"{name}.set_train() resets them to training mode: check")


def _assignments(mig: Migration):
    """One-target assignments whose value is a call, in every scope: to names (scope by scope), then
    to attributes."""
    index = mig.index
    for scope in (index.module_scope, *index.scope_of.values()):
        for bindings in scope.bindings.values():
            for b in bindings:
                if isinstance(b.value, ast.Call) and b.kind == "assign" and isinstance(b.node, ast.Name):
                    yield b.stmt, b.node, b.value, scope
    for stmt, scope in index.attribute_assignments:
        if isinstance(stmt.value, ast.Call):
            yield stmt, stmt.targets[0], stmt.value, scope


def _fresh_construction(mig: Migration, value: ast.Call, scope: Scope):
    """The module type when ``value`` builds a new module whose mode nobody set yet."""
    node = value
    while (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
           and node.func.attr in SELF_RETURNING):
        if node.func.attr in MODE_METHODS:
            return None  # Net().eval(): explicit
        node = node.func.value
    if not isinstance(node, ast.Call):
        return None
    if not isinstance(node.func, (ast.Name, ast.Subscript)) and mig.ref(node.func) is None \
            and not (mig.project is not None and isinstance(node.func, ast.Attribute)):
        return None  # obj.method(...): builds a module only through torch names or modules of the project
    site = mig.site_of(node)
    if site is not None and not site.converted:
        return None  # left as torch: a torch module needs no set_train()
    t = mig.types.of(node, scope)
    if isinstance(t, (ModuleT, MaybeLayerT)):
        return t
    return None


def _first_event(mig: Migration, name: str, stmt: ast.stmt, scope: Scope) -> tuple[str | None, bool]:
    """What the program does first with ``name`` after ``stmt``: "use", "mode" or None; and
    whether every use before a mode call sits under no_grad()/inference_mode()."""
    after = (stmt.end_lineno, stmt.end_col_offset)
    rebinds = sorted((b.node.lineno, b.node.col_offset) for b in scope.bindings.get(name, ())
                     if (b.node.lineno, b.node.col_offset) > after and hasattr(b.node, "lineno"))
    limit = rebinds[0] if rebinds else None
    events = []
    for node, s in mig.index.loads.get(name, ()):
        found = s.resolve(name)
        if found is None or found[0] is not scope:
            continue
        pos = (node.lineno, node.col_offset)
        inline = s
        while inline is not scope and inline.kind == "comprehension":
            inline = inline.parent
        nested = inline is not scope
        if not nested and (pos < after or (limit is not None and pos >= limit)):
            continue
        kind = _classify(mig, node, s)
        if kind is None:
            continue
        if nested and kind == "mode":
            continue  # a mode call inside a function runs whenever that function is called
        events.append((nested, pos, kind, node))
    # Same-scope events in order; uses inside nested functions count as uses (conservative).
    events.sort(key=lambda e: (e[0], e[1]))
    uses_before_mode = []
    for nested, _, kind, node in events:
        if kind == "mode" and not nested:
            break
        if kind == "use":
            uses_before_mode.append((nested, node))
    if not uses_before_mode:
        return ("mode" if events else None), False
    no_grad_only = all(not nested and _under_no_grad(mig, node) for nested, node in uses_before_mode)
    return "use", no_grad_only


def _classify(mig: Migration, node: ast.Name, scope: Scope) -> str | None:
    parent = mig.parent(node)
    if isinstance(parent, ast.Attribute) and parent.value is node:
        call = mig.parent(parent)
        is_call = isinstance(call, ast.Call) and call.func is parent
        if parent.attr in MODE_METHODS and is_call:
            return "mode"
        if parent.attr in ("forward", "__call__") and is_call:
            return "use"
        return None  # attribute reads, .to(device), .parameters(), ...
    if isinstance(parent, ast.Call):
        if parent.func is node:
            return "use"
        return None if _is_registration(mig, parent, scope) else "use"
    if isinstance(parent, ast.keyword):
        call = mig.parent(parent)
        return None if isinstance(call, ast.Call) and _is_registration(mig, call, scope) else "use"
    if isinstance(parent, ast.Assign) and parent.value is node:
        targets = parent.targets
        if all(isinstance(t, ast.Attribute) and isinstance(mig.types.of(t.value, scope), ModuleT) for t in targets):
            return None  # registered as a child of a module
        return "use"
    if isinstance(parent, (ast.Compare, ast.BoolOp)) or (isinstance(parent, ast.UnaryOp)):
        return None
    if isinstance(parent, (ast.Delete,)):
        return None
    return "use"


def _is_registration(mig: Migration, call: ast.Call, scope: Scope) -> bool:
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
    return isinstance(func, ast.Attribute) and func.attr in _REGISTRATION_METHODS


def _under_no_grad(mig: Migration, node: ast.AST) -> bool:
    for anc in mig.index.ancestors(node):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return _decorated_no_grad(mig, anc)
        if isinstance(anc, (ast.With, ast.AsyncWith)):
            for item in anc.items:
                expr = item.context_expr
                if isinstance(expr, ast.Call):
                    expr = expr.func
                ref = mig.ref(expr)
                if ref is not None and ref.qual in _NO_GRAD:
                    return True
    return False


def _decorated_no_grad(mig: Migration, fn: ast.AST) -> bool:
    for d in getattr(fn, "decorator_list", ()):
        expr = d.func if isinstance(d, ast.Call) else d
        ref = mig.ref(expr)
        if ref is not None and ref.qual in _NO_GRAD:
            return True
    return False


def _sets_child_modes(cls: ClassInfo, mode_setters: set[ast.AST | None]) -> bool:
    """Whether the __init__ of the class (or of a same-file base) calls a mode method itself."""
    return any(c.init is not None and c.init in mode_setters for c in cls.mro())


def _owner(mig: Migration, node: ast.AST) -> ast.AST | None:
    """The innermost function, lambda or class ``node`` is in (None at module level)."""
    for anc in mig.index.ancestors(node):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return anc
    return None
