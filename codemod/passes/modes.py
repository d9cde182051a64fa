"""Training mode. A new torch Module is in training mode; a new MindSpore Cell is not.

``x.train()``/``x.eval()`` become ``x.set_train(...)`` on receivers known to be modules, and
``x.set_train()`` is inserted after ``x = <module construction>`` wherever the original used ``x``
before any explicit mode call: inserting it is always faithful (it restores torch's default), so
when in doubt it is inserted, and it is left out only where an explicit mode call provably comes
first.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..analysis import Scope
from ..engine import Migration
from ..inference import (MODE_METHODS, SELF_RETURNING, ClassInfo, ClassT, MaybeLayerT, ModuleT, FunctionT,
                         rebinds_itself, origin_of, strip_self_returning)
from .constructions import converted_here

_MODE_METHOD_NAMES = frozenset(MODE_METHODS)
# Calls that register a module as a child of another: not a use of its own mode.
_REGISTRATION_METHODS = frozenset({"add_module", "register_module", "append", "extend", "insert", "update",
                                   "__setitem__", "setdefault"})
# Attributes of a module that neither run it nor read its mode.
_MODE_BLIND = frozenset({
    "parameters", "named_parameters", "buffers", "named_buffers", "state_dict", "load_state_dict",
    "to", "cuda", "cpu", "float", "double", "half", "bfloat16", "type", "requires_grad_", "zero_grad",
    "register_buffer", "register_parameter", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "add_module", "register_module", "extra_repr", "__class__",
    "weight", "bias", "running_mean", "running_var", "num_batches_tracked", "momentum", "eps",
    "num_features", "affine", "track_running_stats", "normalized_shape", "elementwise_affine",
    "num_groups", "num_channels",
})
_NO_GRAD = ("torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad")


def plan_modes(mig: Migration) -> None:
    calls = _mode_method_calls(mig)
    _mode_calls(mig, calls)
    _training_writes(mig)
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
        start = mig.text.end(attr) - len(attr.attr)
        end = mig.text.end(call)
        if attr.attr == "eval":
            mig.edit(site, start, end, "set_train(False)")
        elif _is_true(call):
            mig.edit(site, start, end, "set_train()")
        else:
            mig.edit(site, start, end, lambda inner: "set_" + inner, is_rewrite=True)


def _training_writes(mig: Migration) -> None:
    """``bn.training = False``: torch's layers read the flag at every call; MindSpore's BatchNorm3d
    reads the one of its inner cell, which only set_train() reaches. On a normalization layer the
    statement becomes ``bn.set_train(False)`` (the same for a layer); elsewhere it is reported."""
    types = mig.types
    for attr, scope in mig.index.attributes:
        if attr.attr != "training" or not isinstance(attr.ctx, ast.Store):
            continue
        stmt = mig.parent(attr)
        t = types.of(attr.value, scope)
        if not isinstance(t, (ModuleT, MaybeLayerT)):
            continue
        receiver = mig.text.segment(attr.value)
        if isinstance(t, ModuleT) and t.is_layer and isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            site = mig.site("mode", stmt)
            site.requires |= origin_of(t)
            value = mig.text.segment(stmt.value)
            mig.replace_node(site, stmt, f"{receiver}.set_train({value})")
            continue
        mig.finding("MD007", attr, f"{receiver}.training = ...: {mig.rules.findings['MD007'].title}")


def _is_true(call: ast.Call) -> bool:
    values = [*call.args, *(k.value for k in call.keywords)]
    return not values or (len(values) == 1 and isinstance(values[0], ast.Constant) and values[0].value is True)


# -- set_train() where a construction needs it -----------------------------------------------------
# A new torch module is in training mode and a new MindSpore cell is not, whatever expression the
# construction sits in. Each construction is followed to where its module goes (its "sink"): a name
# the tool can follow gets ``name.set_train()`` after the statement when it is used before any explicit
# mode call; a child registered while its parent is built is governed by the parent's mode; anything
# else carries ``.set_train()`` in place (``Cell.set_train()`` returns the cell), which is always
# faithful: it restores torch's default at the moment the module is built.


@dataclass
class Sink:
    kind: str  # explicit | discard | child | registered | collected | name | attribute | item | return | other
    target: ast.expr | None = None
    stmt: ast.stmt | None = None
    whole: bool = True  # the assigned value is the construction (through self-returning calls only)
    identity: bool = True  # the value is the construction or something else, never a collection of it
    unpacked: bool = False  # ``a, b = C1, C2``
    receiver: ast.expr | None = None  # registered: the module it is registered with (collected: target)
    function: ast.AST | None = None  # return: the function (or lambda) returning it


_COLLECTION_BUILTINS = frozenset({"list", "tuple", "dict", "set", "sorted", "reversed", "filter"})
_COLLECTING = frozenset({"append", "extend", "insert"})
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _insert_set_train(mig: Migration, calls: list[tuple[ast.Attribute, ast.Call, Scope]]) -> None:
    # The functions (lambdas, classes) whose own code calls a mode method: for MD004.
    planner = _ModePlanner(mig, {_owner(mig, call) for _, call, _ in calls})
    for call, scope in _constructions(mig):
        planner.construction(call, scope)


def _constructions(mig: Migration):
    """Every call that builds a module the migration converted, with its scope."""
    types = mig.types
    for call, scope in types.candidate_calls():
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in SELF_RETURNING and mig.ref(func) is None:
            continue  # bn.to(device): the module it is called on
        if not types.fresh(call, scope):
            continue
        if not converted_here(mig, origin_of(types.of(call, scope))):
            continue  # left as torch, or a Cell already: no set_train()
        yield call, scope


class _ModePlanner:
    def __init__(self, mig: Migration, mode_setters: set):
        self.mig = mig
        self.types = mig.types
        self.mode_setters = mode_setters
        self._training_read: bool | None = None

    def construction(self, call: ast.Call, scope: Scope) -> None:
        mig = self.mig
        sink = _sink(mig, call, scope)
        kind = sink.kind
        if kind in ("explicit", "discard") or _governed(mig, sink, call, scope):
            return
        home = _statement_scope(scope)
        if kind == "attribute":
            if sink.whole and not sink.unpacked:
                self.statement(call, scope, sink.stmt, sink.target, sink.stmt)
                return
        elif kind == "name":
            if home.kind == "class":
                first, no_grad_only = "use", False  # a class attribute is used through instances
            else:
                first, no_grad_only = _first_event(mig, sink.target.id, sink.stmt, home)
            if first != "use":
                return
            if sink.whole:
                self.statement(call, scope, sink.stmt, sink.target, call if sink.unpacked else sink.stmt,
                               no_grad_only)
                return
        elif kind == "return":
            fn = sink.function
            if fn is not None and (self.types.transparent(fn) or self.types.unused(fn)):
                # Its callers build the module, as far as modes go (or they are in other files).
                return
        self.chain(call, scope)

    # -- the two forms -------------------------------------------------------------------------

    def statement(self, call: ast.Call, scope: Scope, stmt: ast.stmt, target: ast.expr, anchor: ast.AST,
                  no_grad_only: bool = False) -> None:
        mig = self.mig
        t = self.types.of(call, scope)
        if self._pushed_down(call, scope, t):
            return
        site = mig.site("set_train", anchor)
        site.requires |= origin_of(t)
        if anchor is not stmt and isinstance(stmt, ast.Assign) and isinstance(stmt.value, (ast.Tuple, ast.List)):
            # a, b = C1, C2: the statements after it are planned together, so they keep their order.
            site.requires |= {id(e) for e in stmt.value.elts}
        name = mig.text.segment(target)
        site.target = name
        mig.insert_after_statement(site, stmt, lambda name=name: f"{name}.set_train()")
        mig.finding("MD001", anchor, f"{name}.set_train() inserted: {name} is used before any explicit "
                                     f"train()/eval(), so the original ran it in torch's default training mode")
        if no_grad_only:
            mig.finding("MD003", anchor, f"{name} runs in torch's implicit training mode, but only under "
                                         f"no_grad()/inference_mode(): kept faithfully (batch statistics); "
                                         f"check whether {name}.eval() was meant")
        self._check_children(call, scope, t, anchor, f"{name}.set_train()")

    def chain(self, node: ast.expr, scope: Scope, reason: str | None = None,
              requires: frozenset = frozenset()) -> None:
        """``.set_train()`` right after ``node`` (a construction, or a name known to hold a module in
        training mode)."""
        mig = self.mig
        t = self.types.of(node, scope)
        if isinstance(node, ast.Call) and self._pushed_down(node, scope, t):
            return
        site = mig.site("set_train", node)
        if site.edits:
            return  # planned already
        site.requires |= origin_of(t) | requires
        end = mig.text.end(node)
        mig.edit(site, end, end, ".set_train()")
        what = _short(mig.text.segment(node.func if isinstance(node, ast.Call) else node))
        mig.finding("MD001", node, reason or (
            f"{what}(...).set_train(): torch builds modules in training mode, and where this one goes "
            f"cannot be followed with a statement"))
        if isinstance(node, ast.Call):
            self._check_children(node, scope, t, node, f"{what}(...).set_train()")

    # -- containers and the modules passed to a construction ----------------------------------------

    def _pushed_down(self, call: ast.Call, scope: Scope, t) -> bool:
        """A container whose children may not all be in training mode: set_train() on it would set
        them all (torch's Sequential(...) leaves them as they were), so each child that is known to be
        in training mode carries its own set_train() instead, and the others are left as they are."""
        if not (isinstance(t, ModuleT) and t.container):
            return False
        leaves = list(_leaves(self.mig, call, scope))
        if all(_training(self.mig, leaf, scope) for leaf in leaves):
            return False
        container = _short(self.mig.text.segment(call.func))
        # Converted together with the container: once it is MindSpore's, nothing says where to push.
        together = origin_of(t)
        if self._reads_training():
            self.mig.finding("MD006", call, f"{container}(...): {self.mig.rules.findings['MD006'].title}")
        for leaf in leaves:
            if isinstance(leaf, ast.Constant) or not _training(self.mig, leaf, scope):
                continue
            if isinstance(leaf, ast.Call):
                core = strip_self_returning(leaf)
                if isinstance(core, ast.Call) and self.types.fresh(core, scope):
                    self.chain(core, scope, f".set_train() on this child of {container}(...), not on the container: "
                                            f"set_train() on a MindSpore container sets every child, and some of "
                                            f"its children may not be in training mode here", together)
            elif isinstance(leaf, ast.Name):
                self.chain(leaf, scope, f"{leaf.id}.set_train() where {container}(...) takes it: {leaf.id} is in "
                                        f"torch's training mode here, and set_train() on the container would "
                                        f"also set children that may not be", together)
        return True

    def _reads_training(self) -> bool:
        """Whether the file reads ``.training`` of something that may be a torch container (only then
        can a container's own flag matter; ``self.training`` in a same-file class is that class's)."""
        if self._training_read is None:
            types = self.types
            self._training_read = False
            for a, scope in self.mig.index.attributes:
                if a.attr == "training" and isinstance(a.ctx, ast.Load):
                    t = types.of(a.value, scope)
                    if not (isinstance(t, ModuleT) and (t.cls is not None or t.is_layer)):
                        self._training_read = True
                        break
        return self._training_read

    def _check_children(self, call: ast.Call, scope: Scope, t, anchor: ast.AST, inserted: str) -> None:
        mig = self.mig
        cls = t.cls if isinstance(t, ModuleT) else None
        if cls is None:
            return
        if _sets_child_modes(cls, self.mode_setters):
            name = inserted.split(".set_train()")[0]
            mig.finding("MD004", anchor, f"{cls.name}.__init__ sets modes of its children; "
                                         f"{name}.set_train() resets them to training mode: check")
        passed = [leaf for leaf in _leaves(mig, call, scope)
                  if isinstance(self.types.of(leaf, scope), (ModuleT, MaybeLayerT))
                  and not _training(mig, leaf, scope)]
        if passed:
            names = ", ".join(_short(mig.text.segment(p)) for p in passed)
            mig.finding("MD005", anchor, f"{inserted} also sets {names}, which torch's {cls.name}(...) leaves "
                                         f"in whatever mode it was: check that it is in training mode here")


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _statement_scope(scope: Scope) -> Scope:
    while scope.kind == "comprehension" and scope.parent is not None:
        scope = scope.parent
    return scope


def _sink(mig: Migration, call: ast.Call, scope: Scope) -> Sink:
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
            if _is_collection_call(mig, p, scope):
                whole, depth, node = False, depth + 1, p  # list(...), OrderedDict([...])
                continue
            if _is_container(mig, p, scope) or _is_container_init(mig, p) \
                    or (depth == 0 and _stored_as_child(mig, p, node, scope)):
                return Sink("child")
            receiver = _registered_with(mig, p, scope)
            if receiver is not None:
                return Sink("registered", receiver=receiver)
            func = p.func
            if isinstance(func, ast.Attribute) and func.attr in _COLLECTING and isinstance(func.value, ast.Name):
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
            return Sink("return", function=_owner(mig, p))
        if t is ast.Lambda:
            return Sink("return", function=p)
        if t is ast.Expr:
            return Sink("discard")
        return Sink("other")  # defaults, walrus, loops, with, yield, operators, ...


def _governed(mig: Migration, sink: Sink, node: ast.AST, scope: Scope, depth: int = 0) -> bool:
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
        t = types.of(sink.target.value, _statement_scope(scope))
        return (sink.identity and isinstance(t, ModuleT) and t.container
                and _in_own_init(mig, types, sink.target.value, node))
    if kind == "collected":
        t = types.of(sink.target, _statement_scope(scope))
        if isinstance(t, ModuleT):  # layers["bn"] = ... on a ModuleDict: registered with it
            return _in_own_init(mig, types, sink.target, node)
    if kind == "collected" or (kind == "name" and not sink.identity):
        return depth < 8 and _collected_into_child(mig, sink.target, scope, depth)
    if kind == "return":
        fn = sink.function
        if fn is None or depth >= 8 or not types.transparent(fn):
            return False
        callers = types.callers(fn)
        return bool(callers) and all(_governed(mig, _sink(mig, c, s), c, s, depth + 1) for c, s in callers)
    return False


def _collected_into_child(mig: Migration, name: ast.Name, scope: Scope, depth: int) -> bool:
    """Whether the list ``name`` (bound to displays, filled with append/extend/insert/+=) is only ever
    handed, whole, to container constructions that are themselves governed: ``blocks = []``,
    ``blocks.append(Block(...))``, ``self.blocks = nn.Sequential(*blocks)`` in ``__init__``."""
    home = _statement_scope(scope)
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
                      and _is_collection_call(mig, b.value, home))):
            return False  # not a display, nor list()/dict()/OrderedDict()
    handed = False
    for load, s in mig.index.loads.get(name.id, ()):
        found = s.resolve(name.id)
        if found is None or found[0] is not home:
            continue
        if _statement_scope(s) is not home:
            return False
        parent = mig.parent(load)
        if isinstance(parent, ast.Attribute) and parent.attr in _COLLECTING:
            continue
        if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
            continue  # layers["conv"] = ...
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "len":
            continue
        arg = parent if isinstance(parent, ast.Starred) else load
        call = mig.parent(arg)
        if isinstance(call, ast.Call) and call.func is not arg and (_is_container_init(mig, call) or (
                _is_container(mig, call, s) and _governed(mig, _sink(mig, call, s), call, s, depth + 1))):
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
    fn = _owner(mig, call)
    if not isinstance(fn, ast.FunctionDef) or fn.name != "__init__":
        return False
    cls = mig.types.enclosing_class(fn)
    containers = {q for q, n in mig.rules.names.items() if n.kind == "container"}
    return cls is not None and any(q in containers for c in cls.mro() for q in c.torch_bases)


def _stored_as_child(mig: Migration, call: ast.Call, arg: ast.AST, scope: Scope) -> bool:
    """Whether ``call`` builds a same-file module class whose ``__init__`` stores the argument ``arg``
    as a child (``self.inner = inner``)."""
    callee = mig.types.of(call.func, scope)
    if not isinstance(callee, ClassT) or not callee.cls.is_module:
        return False
    owner = next((c for c in callee.cls.mro() if c.init is not None), None)
    if owner is None:
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


def _is_collection_call(mig: Migration, call: ast.Call, scope: Scope) -> bool:
    func = call.func
    if isinstance(func, ast.Name) and func.id in _COLLECTION_BUILTINS and scope.resolve(func.id) is None:
        return True
    return mig.qualified(func, scope) == "collections.OrderedDict"


def _is_container(mig: Migration, call: ast.Call, scope: Scope) -> bool:
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
    if isinstance(func, ast.Attribute) and func.attr in _REGISTRATION_METHODS:
        receiver = func.value
    elif isinstance(func, ast.Name) and func.id == "setattr" and call.args and scope.resolve("setattr") is None:
        receiver = call.args[0]
    else:
        return None
    return receiver if isinstance(mig.types.of(receiver, _statement_scope(scope)), ModuleT) else None


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


def _leaves(mig: Migration, call: ast.Call, scope: Scope):
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
        elif isinstance(e, ast.Call) and _is_collection_call(mig, e, scope):
            stack.extend([*e.args, *(k.value for k in e.keywords)])
        else:
            yield e


def _training(mig: Migration, expr: ast.expr, scope: Scope, depth: int = 0) -> bool:
    """Whether ``expr`` is known to be a module in torch's training mode (or no module at all)."""
    if isinstance(expr, ast.Constant) or depth > 20:
        return isinstance(expr, ast.Constant)
    if isinstance(expr, ast.Name):
        return _trained_name(mig, expr, scope, depth)
    if not isinstance(expr, ast.Call):
        return False
    node = expr
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SELF_RETURNING:
        if node.func.attr in MODE_METHODS:
            return node.func.attr != "eval" and _is_true(node)  # the last mode call decides
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
        return bool(values) and all(v is not None and _training(mig, v, fn_scope, depth + 1) for v in values)
    if types.fresh(node, scope):
        t = types.of(node, scope)
        if isinstance(t, ModuleT) and t.container:
            return all(_training(mig, leaf, scope, depth + 1) for leaf in _leaves(mig, node, scope))
        if isinstance(t, ModuleT) and t.cls is not None:  # what it is given may be in eval mode
            return all(_training(mig, leaf, scope, depth + 1) for leaf in _leaves(mig, node, scope)
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
    home = _statement_scope(scope)
    found = scope.resolve(name.id)
    if found is None or found[0] is not home:
        return False
    if any(_is_list_binding(mig, b) for b in found[1]):
        return _trained_list(mig, name, found[1], home, depth)
    bindings = found[1]  # one, or one per branch (``if ...: block = A(...) else: block = B(...)``)
    if any(b.kind != "assign" or b.value is None or b.stmt is None for b in bindings):
        return False
    start = min((b.stmt.end_lineno, b.stmt.end_col_offset) for b in bindings)
    here = (name.lineno, name.col_offset)
    if any((b.stmt.end_lineno, b.stmt.end_col_offset) > here for b in bindings):
        return False
    if not all(_training(mig, b.value, home, depth + 1) for b in bindings):
        return False
    for anc in mig.index.ancestors(name):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)):
            break
        if isinstance(anc, (ast.For, ast.AsyncFor, ast.While)) and not all(_contains(anc, b.stmt) for b in bindings):
            return False  # built before a loop that wraps it again and again
    for load, s in mig.index.loads.get(name.id, ()):
        if load is name:
            continue
        found = s.resolve(name.id)
        if found is None or found[0] is not home:
            continue
        if _statement_scope(s) is not home:
            return False  # used in a function that may run at any time
        pos = (load.lineno, load.col_offset)
        if not (start <= pos < here):
            continue
        if not _harmless(mig, load, s):
            return False
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
        and _is_collection_call(mig, b.value, b.scope))


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
        if _statement_scope(s) is not home:
            return False
        if (load.lineno, load.col_offset) >= here:
            continue
        parent = mig.parent(load)
        call = mig.parent(parent)
        if isinstance(parent, ast.Attribute) and parent.attr in _COLLECTING and isinstance(call, ast.Call) \
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
    return all(_training(mig, leaf, home, depth + 1) for leaf in leaves)


def _harmless(mig: Migration, load: ast.Name, scope: Scope) -> bool:
    """A use that cannot change the mode: a call of the module, an attribute read, a registration."""
    parent = mig.parent(load)
    if isinstance(parent, ast.Call):
        return parent.func is load or _is_registration(mig, parent, scope) or _is_container(mig, parent, scope)
    if isinstance(parent, ast.keyword):
        call = mig.parent(parent)
        return isinstance(call, ast.Call) and (_is_registration(mig, call, scope) or _is_container(mig, call, scope))
    if isinstance(parent, ast.Attribute) and parent.value is load:
        call = mig.parent(parent)
        if isinstance(call, ast.Call) and call.func is parent:
            if parent.attr in ("train", "set_train"):
                return _is_true(call)  # sets what it already is (also: the set_train() this tool inserts)
            return parent.attr in ("forward", "__call__")
        return isinstance(parent.ctx, ast.Load)
    if isinstance(parent, (ast.List, ast.Tuple)):
        return True  # stored in a collection (its uses are checked where the collection goes)
    return isinstance(parent, (ast.Compare, ast.BoolOp, ast.UnaryOp))


def _contains(outer: ast.AST, inner: ast.AST) -> bool:
    return (outer.lineno, outer.col_offset) <= (inner.lineno, inner.col_offset) and \
        (inner.end_lineno, inner.end_col_offset) <= (outer.end_lineno, outer.end_col_offset)


def _first_event(mig: Migration, name: str, stmt: ast.stmt, scope: Scope) -> tuple[str | None, bool]:
    """What the program does first with ``name`` after ``stmt``: "use", "mode" or None; and
    whether every use before a mode call sits under no_grad()/inference_mode()."""
    after = (stmt.end_lineno, stmt.end_col_offset)
    rebinds = sorted((b.node.lineno, b.node.col_offset) for b in scope.bindings.get(name, ())
                     if hasattr(b.node, "lineno") and (b.node.lineno, b.node.col_offset) > after
                     and not (b.kind == "assign" and rebinds_itself(b)))  # m = m.to(device): still m
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
        if (parent.attr in MODE_METHODS and is_call) or (parent.attr == "training" and isinstance(parent.ctx, ast.Store)):
            return "mode"
        return _through(mig, node, scope)
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


def _through(mig: Migration, expr: ast.expr, scope: Scope, depth: int = 0) -> str | None:
    """Whether what the program does with ``expr`` (a module, or a child reached through it:
    ``net.bn``, ``net.blocks[0]``) runs it or reads its mode ("use"); None when it only looks at
    parameters, moves it, or hands it to a container."""
    parent = mig.parent(expr)
    if depth > 8:
        return "use"
    if isinstance(parent, ast.Attribute) and parent.value is expr:
        call = mig.parent(parent)
        is_call = isinstance(call, ast.Call) and call.func is parent
        if parent.attr in _MODE_BLIND or not isinstance(parent.ctx, ast.Load):
            return None  # .to(device), .parameters(), .weight, an attribute set: nothing reads the mode
        if is_call or parent.attr == "training":
            return "use"  # .forward(x), a method, a child's mode call, the mode itself
        return _through(mig, parent, scope, depth + 1)  # net.bn: follow the child
    if isinstance(parent, ast.Subscript) and parent.value is expr:
        return _through(mig, parent, scope, depth + 1) if isinstance(parent.ctx, ast.Load) else None
    if isinstance(parent, ast.Call):
        if parent.func is expr:
            return "use"
        return None if _is_registration(mig, parent, scope) else "use"
    if isinstance(parent, ast.keyword):
        call = mig.parent(parent)
        return None if isinstance(call, ast.Call) and _is_registration(mig, call, scope) else "use"
    if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is expr and isinstance(parent.target, ast.Name):
        name = parent.target.id
        for load, s in mig.index.loads.get(name, ()):
            if _contains(parent, load) and _through(mig, load, s, depth + 1) is not None:
                return "use"
        return None  # for layer in net.features: print(layer.weight)
    if depth and isinstance(parent, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Expr)):
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
