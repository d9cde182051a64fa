"""Where the module a construction builds goes: the expression it is handed on through (a display, a
comprehension, ``a if c else b``, self-returning calls) up to what receives it (a name, an attribute,
a container or the module being built, a return, an argument). Used to decide which constructions
need ``set_train()`` (modes.py)."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..facts.inference import External, MODE_METHODS, SELF_RETURNING, ClassT, ModuleT
from ..facts.scopes import Scope
from ..migration import Migration

# Calls that register a module as a child of another: not a use of its own mode.
REGISTRATION_METHODS = frozenset({"add_module", "register_module", "insert_child_to_cell", "append", "extend",
                                  "insert", "update", "__setitem__", "setdefault"})
_COLLECTION_BUILTINS = frozenset({"list", "tuple", "dict", "set", "sorted", "reversed", "filter"})


COLLECTING = frozenset({"append", "extend", "insert"})


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


@dataclass
class Sink:
    kind: str  # explicit | discard | child | registered | collected | name | attribute | item | return | other
    target: ast.expr | None = None  # name/attribute/item: the target; collected: the list or dict
    stmt: ast.stmt | None = None
    whole: bool = True  # the assigned value is the construction (through self-returning calls only)
    identity: bool = True  # the value is the construction or something else, never a collection of it
    unpacked: bool = False  # ``a, b = C1, C2``
    receiver: ast.expr | None = None  # registered: the module it is registered with
    function: ast.AST | None = None  # return: the function (or lambda) returning it


def statement_scope(scope: Scope) -> Scope:
    while scope.kind == "comprehension" and scope.parent is not None:
        scope = scope.parent
    return scope


def sink_of(mig: Migration, call: ast.Call, scope: Scope) -> Sink:
    """Where the module ``call`` builds goes, following it through the expressions that hand it on."""
    node: ast.AST = call
    whole = True
    depth = 0  # how many collections (displays, comprehensions) hold it
    while True:
        p = mig.parent(node)
        t = type(p)
        if t is ast.Attribute:
            gp = mig.parent(p)
            if isinstance(gp, ast.Call) and gp.func is p and p.attr in SELF_RETURNING:
                if p.attr in MODE_METHODS:
                    return Sink("explicit")  # nn.BatchNorm2d(3).eval(): the program sets it
                node = gp
                continue
            return Sink("other")  # nn.BatchNorm2d(3).forward(x), .weight, ...
        if t is ast.List or t is ast.Tuple or t is ast.Set:
            pair = _unpacked_target(mig, p, node)
            if pair is not None:
                return _assigned(pair[0], pair[1], whole, depth, unpacked=True)
            whole, depth, node = False, depth + 1, p
            continue
        if t is ast.Starred:
            whole, depth, node = False, depth + 1, p
            continue
        if t is ast.Dict:
            if any(v is node for v in p.values):
                whole, depth, node = False, depth + 1, p
                continue
            return Sink("other")  # a key
        if t in _COMPREHENSIONS:
            if node is getattr(p, "elt", None) or node is getattr(p, "value", None):
                whole, depth, node = False, depth + 1, p
                continue
            return Sink("other")
        if t is ast.IfExp:
            if node is p.test:
                return Sink("other")
            whole, node = False, p
            continue
        if t is ast.BoolOp:
            whole, node = False, p
            continue
        if t is ast.Subscript:
            if p.value is not node:
                return Sink("other")
            whole, depth, node = False, max(depth - 1, 0), p  # [bn1, bn2][i]: one of them
            continue
        if t is ast.keyword:
            p = mig.parent(p)
            t = ast.Call
        elif t is ast.Call and p.func is node:
            return Sink("other")  # nn.BatchNorm2d(4)(x): used where it is built
        if t is ast.Call:
            if is_collection_call(mig, p, scope):
                whole, depth, node = False, depth + 1, p  # list(...), OrderedDict([...])
                continue
            if is_container(mig, p, scope) or _is_container_init(mig, p) \
                    or (depth == 0 and _stored_as_child(mig, p, node, scope)):
                return Sink("child")
            receiver = _registered_with(mig, p, scope)
            if receiver is not None:
                return Sink("registered", receiver=receiver)
            func = p.func
            if isinstance(func, ast.Attribute) and func.attr in COLLECTING and isinstance(func.value, ast.Name):
                return Sink("collected", target=func.value)  # blocks.append(...)
            return Sink("other")
        if t is ast.Assign and p.value is node:
            if len(p.targets) == 1:
                return _assigned(p.targets[0], p, whole, depth)
            return Sink("other")
        if t is ast.AnnAssign and p.value is node:
            return _assigned(p.target, p, whole, depth)
        if t is ast.AugAssign and p.value is node and isinstance(p.target, ast.Name):
            return Sink("collected", target=p.target)  # blocks += [...]
        if t is ast.Return:
            return Sink("return", function=owner_of(mig, p))
        if t is ast.Lambda:
            return Sink("return", function=p)
        if t is ast.Expr:
            return Sink("discard")
        return Sink("other")  # defaults, walrus, loops, with, yield, operators, ...


def governed(mig: Migration, sink: Sink, node: ast.AST, scope: Scope, depth: int = 0) -> bool:
    """Whether what reaches ``sink`` becomes a child of a module being built (in its ``__init__``, or
    in a container's construction), whose mode then governs it."""
    kind = sink.kind
    if kind == "child":
        return True
    types = mig.types
    if kind == "registered":
        return _in_own_init(mig, types, sink.receiver, node)
    if kind == "attribute":
        return sink.identity and _in_own_init(mig, types, sink.target.value, node)
    if kind == "item":
        t = types.of(sink.target.value, statement_scope(scope))
        return (sink.identity and isinstance(t, ModuleT) and t.container
                and _in_own_init(mig, types, sink.target.value, node))
    if kind == "collected":
        t = types.of(sink.target, statement_scope(scope))
        if isinstance(t, ModuleT):  # layers["bn"] = ... on a ModuleDict: registered with it
            return _in_own_init(mig, types, sink.target, node)
    if kind == "collected" or (kind == "name" and not sink.identity):
        return depth < 8 and _collected_into_child(mig, sink.target, scope, depth)
    if kind == "return":
        fn = sink.function
        if fn is None or depth >= 8 or not types.transparent(fn):
            return False
        callers = types.callers(fn)
        return bool(callers) and all(governed(mig, sink_of(mig, c, s), c, s, depth + 1) for c, s in callers)
    return False


def _collected_into_child(mig: Migration, name: ast.Name, scope: Scope, depth: int) -> bool:
    """Whether the list ``name`` (bound to displays, filled with append/extend/insert/+=) is only ever
    handed, whole, to container constructions that are themselves governed: ``blocks = []``,
    ``blocks.append(Block(...))``, ``self.blocks = nn.Sequential(*blocks)`` in ``__init__``."""
    home = statement_scope(scope)
    found = home.resolve(name.id)
    if found is None or found[0] is not home:
        return False
    for b in found[1]:
        if b.kind != "assign":
            return False
        if b.value is None:
            stmt = mig.parent(b.node)
            if not (isinstance(stmt, ast.AugAssign) and stmt.target is b.node):
                return False
        elif not (isinstance(b.value, (ast.List, ast.Tuple, ast.Dict))
                  or (isinstance(b.value, ast.Call) and not b.value.args and not b.value.keywords
                      and is_collection_call(mig, b.value, home))):
            return False  # not a display, nor list()/dict()/OrderedDict()
    handed = False
    for load, s in mig.index.loads.get(name.id, ()):
        found = s.resolve(name.id)
        if found is None or found[0] is not home:
            continue
        if statement_scope(s) is not home:
            return False
        parent = mig.parent(load)
        if isinstance(parent, ast.Attribute) and parent.attr in COLLECTING:
            continue
        if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
            continue  # layers["conv"] = ...
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "len":
            continue
        arg = parent if isinstance(parent, ast.Starred) else load
        call = mig.parent(arg)
        if isinstance(call, ast.Call) and call.func is not arg and (_is_container_init(mig, call) or (
                is_container(mig, call, s) and governed(mig, sink_of(mig, call, s), call, s, depth + 1))):
            handed = True
            continue
        return False
    return handed


def _is_container_init(mig: Migration, call: ast.Call) -> bool:
    """``super().__init__(...)`` in the ``__init__`` of a subclass of a torch container: its arguments
    become the children of the module being built."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "__init__" and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "super"):
        return False
    fn = owner_of(mig, call)
    if not isinstance(fn, ast.FunctionDef) or fn.name != "__init__":
        return False
    cls = mig.types.enclosing_class(fn)
    # torch's containers, and MindSpore's in a file migrated part way (converting it in steps must end
    # where converting it at once does).
    containers = {q for q, n in mig.rules.names.items() if n.kind == "container"}
    containers |= {n.mindspore for n in mig.rules.names.values() if n.kind == "container"}
    return cls is not None and any(q in containers for c in cls.mro()
                                   for q in (*c.torch_bases, *c.mindspore_bases))


def _stored_as_child(mig: Migration, call: ast.Call, arg: ast.AST, scope: Scope) -> bool:
    """Whether ``call`` builds a same-file module class whose ``__init__`` stores the argument ``arg``
    as a child (``self.inner = inner``)."""
    callee = mig.types.of(call.func, scope)
    if not isinstance(callee, ClassT) or not callee.cls.is_module:
        return False
    owner = next((c for c in callee.cls.mro() if c.init is not None), None)
    if owner is None or isinstance(owner, External):  # an __init__ of another file: not read here
        return False
    params = owner.init.args.posonlyargs + owner.init.args.args
    param = None
    for k in call.keywords:
        if k.value is arg:
            param = k.arg
    if param is None and arg in call.args and not any(isinstance(a, ast.Starred) for a in call.args):
        i = call.args.index(arg) + 1  # after self
        param = params[i].arg if i < len(params) else None
    if param is None:
        return False
    return any(isinstance(v, ast.Name) and v.id == param for values in owner.init_assigns.values() for v in values)


def _assigned(target: ast.expr, stmt: ast.stmt, whole: bool, depth: int, unpacked: bool = False) -> Sink:
    if isinstance(target, ast.Name):
        return Sink("name", target, stmt, whole, depth == 0, unpacked)
    if isinstance(target, ast.Attribute):
        return Sink("attribute", target, stmt, whole, depth == 0, unpacked)
    if isinstance(target, ast.Subscript):
        if isinstance(target.value, ast.Name) and not unpacked:
            return Sink("collected", target=target.value)  # layers["conv"] = ... (a dict, or a module)
        return Sink("item", target, stmt, whole, depth == 0, unpacked)
    return Sink("other")


def _unpacked_target(mig: Migration, display: ast.AST, element: ast.AST):
    """``a, b = C1, C2``: the target ``element`` is assigned to, and the statement."""
    stmt = mig.parent(display)
    if not (isinstance(display, (ast.Tuple, ast.List)) and isinstance(stmt, ast.Assign)
            and stmt.value is display and len(stmt.targets) == 1):
        return None
    target = stmt.targets[0]
    if not isinstance(target, (ast.Tuple, ast.List)) or len(target.elts) != len(display.elts):
        return None
    if any(isinstance(e, ast.Starred) for e in (*target.elts, *display.elts)):
        return None
    for value, t in zip(display.elts, target.elts):
        if value is element:
            return t, stmt
    return None


def is_collection_call(mig: Migration, call: ast.Call, scope: Scope) -> bool:
    func = call.func
    if isinstance(func, ast.Name) and func.id in _COLLECTION_BUILTINS and scope.resolve(func.id) is None:
        return True
    return mig.qualified(func, scope) == "collections.OrderedDict"


def is_container(mig: Migration, call: ast.Call, scope: Scope) -> bool:
    """A container construction (torch's, or MindSpore's in a file migrated part way)."""
    ref = mig.ref(call.func)
    if ref is not None:
        name = mig.rules.names.get(ref.qual)
        return name is not None and name.kind == "container"
    qual = mig.qualified(call.func, scope)
    return qual is not None and qual in {n.mindspore for n in mig.rules.names.values() if n.kind == "container"}


def _registered_with(mig: Migration, call: ast.Call, scope: Scope) -> ast.expr | None:
    """The module a call registers its argument with: ``m.add_module(name, C)``,
    ``m.layers.append(C)``, ``setattr(m, name, C)``."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in REGISTRATION_METHODS:
        receiver = func.value
    elif isinstance(func, ast.Name) and func.id == "setattr" and call.args and scope.resolve("setattr") is None:
        receiver = call.args[0]
    else:
        return None
    return receiver if isinstance(mig.types.of(receiver, statement_scope(scope)), ModuleT) else None


def _in_own_init(mig: Migration, types, owner: ast.expr, node: ast.AST) -> bool:
    """Whether ``owner`` is ``self`` (or a part of it) inside the ``__init__`` of a module class: what
    is registered there is built with its parent, whose mode then governs it."""
    fn = None
    for anc in mig.index.ancestors(node):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            fn = anc
            break
    if not isinstance(fn, ast.FunctionDef) or fn.name != "__init__":
        return False
    cls = types.enclosing_class(fn)
    if cls is None or not cls.is_module:
        return False
    root = owner
    while isinstance(root, (ast.Attribute, ast.Subscript)):
        root = root.value
    args = fn.args.posonlyargs + fn.args.args
    return isinstance(root, ast.Name) and bool(args) and root.id == args[0].arg


def owner_of(mig: Migration, node: ast.AST) -> ast.AST | None:
    """The innermost function, lambda or class ``node`` is in (None at module level)."""
    for anc in mig.index.ancestors(node):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return anc
    return None
