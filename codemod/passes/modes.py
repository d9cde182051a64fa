"""Training mode. A new torch Module is in training mode; a new MindSpore Cell is not.

``x.train()``/``x.eval()`` become ``x.set_train(...)`` on receivers known to be modules, and every
construction the migration converts gets the training mode torch gives it, whatever expression it
sits in: ``x.set_train()`` after ``x = <construction>`` where the original used ``x`` before any
explicit mode call, ``.set_train()`` chained where the module goes somewhere no statement can follow,
nothing where its parent being built governs it (sinks.py says where a module goes). Inserting is
always faithful (it restores torch's default), so when in doubt it is inserted, and it is left out
only where an explicit mode call provably comes first or a parent's set_train() reaches it.
"""

from __future__ import annotations

import ast

from ..converters import escape
from ..facts.inference import (
    MODE_METHODS,
    SELF_RETURNING,
    ClassInfo,
    External,
    MaybeLayerT,
    ModuleT,
    origin_of,
    rebinds_itself,
    strip_self_returning,
)
from ..facts.scopes import Scope
from ..migration import Migration
from ..plan import ChainCall, InsertStatement, ReplaceStatement, SetMode, Template
from .constructions import converted_here
from .sinks import governed, owner_of, sink_of, statement_scope
from .training import contains, in_training, is_registration, is_true, leaves

# The statement inserted after ``x = <construction>``: ``{target}`` is what the statement assigns.
SET_TRAIN = Template("{target}.set_train()")

_MODE_METHOD_NAMES = frozenset(MODE_METHODS)
# Calls that register a module as a child of another: not a use of its own mode.
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
        mode = False if attr.attr == "eval" else True if is_true(call) else None
        mig.change(site, SetMode(site.id, mig.key(call), mode))


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
            mig.change(site, ReplaceStatement(site.id, mig.key(stmt), (Template(escape(f"{receiver}.set_train({value})")),)))
            continue
        mig.finding("MD007", attr, f"{receiver}.training = ...: {mig.rules.findings['MD007'].title}")


# -- set_train() where a construction needs it -----------------------------------------------------
# A new torch module is in training mode and a new MindSpore cell is not, whatever expression the
# construction sits in. Each construction is followed to where its module goes (its "sink"): a name
# the tool can follow gets ``name.set_train()`` after the statement when it is used before any explicit
# mode call; a child registered while its parent is built is governed by the parent's mode; anything
# else carries ``.set_train()`` in place (``Cell.set_train()`` returns the cell), which is always
# faithful: it restores torch's default at the moment the module is built.


def _insert_set_train(mig: Migration, calls: list[tuple[ast.Attribute, ast.Call, Scope]]) -> None:
    # The functions (lambdas, classes) whose own code calls a mode method: for MD004.
    planner = _ModePlanner(mig, {owner_of(mig, call) for _, call, _ in calls})
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
        if not converted_here(mig, origin_of(types.of(call, scope))) \
                and not External.holds(types.of(call.func, scope)):  # built by another file of the project
            continue  # left as torch, or a Cell already: no set_train()
        yield call, scope


def _mode_call_follows(mig: Migration, stmt: ast.stmt, target: ast.expr) -> bool:
    """Whether the statement right after ``stmt`` sets the mode of ``target`` (``x.train(...)``,
    ``x.eval()``, ``x.set_train(...)``: a second run sees the one the first wrote)."""
    parent = mig.parent(stmt)
    for field in ("body", "orelse", "finalbody"):
        block = getattr(parent, field, None)
        if isinstance(block, list) and any(item is stmt for item in block):
            i = next(i for i, item in enumerate(block) if item is stmt)
            following = block[i + 1] if i + 1 < len(block) else None
            call = following.value if isinstance(following, ast.Expr) else None
            return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr in _MODE_METHOD_NAMES
                    and ast.unparse(call.func.value) == ast.unparse(target))
    return False


class _ModePlanner:
    def __init__(self, mig: Migration, mode_setters: set):
        self.mig = mig
        self.types = mig.types
        self.mode_setters = mode_setters
        self._training_read: bool | None = None

    def construction(self, call: ast.Call, scope: Scope) -> None:
        mig = self.mig
        sink = sink_of(mig, call, scope)
        kind = sink.kind
        if kind in ("explicit", "discard") or governed(mig, sink, call, scope):
            return
        home = statement_scope(scope)
        if kind == "attribute":
            if sink.whole and not sink.unpacked:
                if _mode_call_follows(mig, sink.stmt, sink.target):
                    return  # self.pool = Pool(...); self.pool.train(self.training): explicit first
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
        site.message = f"insert `{name}.set_train()`"
        # What the statement assigns, taken from the tree; a part of it (a, b = ...) spelled out.
        whole = isinstance(stmt, (ast.Assign, ast.AnnAssign)) and target is (
            stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else getattr(stmt, "target", None))
        statement = SET_TRAIN if whole else Template(escape(f"{name}.set_train()"))
        mig.change(site, InsertStatement(site.id, mig.key(stmt), statement))
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
        if site.changes:
            return  # planned already
        site.requires |= origin_of(t) | requires
        mig.change(site, ChainCall(site.id, mig.key(node), "set_train"))
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
        children = list(leaves(self.mig, call, scope))
        if all(in_training(self.mig, leaf, scope) for leaf in children):
            return False
        container = _short(self.mig.text.segment(call.func))
        # Converted together with the container: once it is MindSpore's, nothing says where to push.
        together = origin_of(t)
        if self._reads_training():
            self.mig.finding("MD006", call, f"{container}(...): {self.mig.rules.findings['MD006'].title}")
        for leaf in children:
            if isinstance(leaf, ast.Constant) or not in_training(self.mig, leaf, scope):
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
        passed = [leaf for leaf in leaves(mig, call, scope)
                  if isinstance(self.types.of(leaf, scope), (ModuleT, MaybeLayerT))
                  and not in_training(mig, leaf, scope)]
        if passed:
            names = ", ".join(_short(mig.text.segment(p)) for p in passed)
            mig.finding("MD005", anchor, f"{inserted} also sets {names}, which torch's {cls.name}(...) leaves "
                                         f"in whatever mode it was: check that it is in training mode here")


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        return None if is_registration(mig, parent, scope) else "use"
    if isinstance(parent, ast.keyword):
        call = mig.parent(parent)
        return None if isinstance(call, ast.Call) and is_registration(mig, call, scope) else "use"
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
        return None if is_registration(mig, parent, scope) else "use"
    if isinstance(parent, ast.keyword):
        call = mig.parent(parent)
        return None if isinstance(call, ast.Call) and is_registration(mig, call, scope) else "use"
    if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is expr and isinstance(parent.target, ast.Name):
        name = parent.target.id
        for load, s in mig.index.loads.get(name, ()):
            if contains(parent, load) and _through(mig, load, s, depth + 1) is not None:
                return "use"
        return None  # for layer in net.features: print(layer.weight)
    if depth and isinstance(parent, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Expr)):
        return None
    return "use"


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
