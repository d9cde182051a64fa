"""Which expressions are modules, which are normalization layers, and which are tensors.

A small abstract interpretation over the ``ast``: constructions of torch layers and containers,
same-file ``nn.Module`` subclasses (directly or through each other), ``self.<attr>`` assigned in
``__init__``, loop variables over containers, names narrowed by ``isinstance``, factories
(``functools.partial(nn.BatchNorm2d, ...)``, aliases of the class) and same-file functions that
return modules. Tensors: the parameters of ``forward``/``construct`` (but ``self``), what calling a
module, a torch function the rules map or a MindSpore function gives, what the rules' tensor methods
give, arithmetic on tensors and their elements. Anything else is unknown, and unknown is never
guessed to be a module or a tensor.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterator

from .scopes import Binding, Scope

if TYPE_CHECKING:
    from ..migration import Migration
    from ..ruleset import LayerRule


# -- the lattice ---------------------------------------------------------------------------------


# Every type carries its ``origin``: the ids of the nodes (constructor calls, class references) whose
# conversion makes the value a MindSpore object. A site that relies on the type requires those sites:
# converting one without the other would leave the program half torch, half MindSpore.


@dataclass(frozen=True)
class ModuleT:
    """Certainly a module. ``rules``: the normalization layers it may be (empty = not one);
    ``cls``: its same-file class; ``container``: Sequential/ModuleList/ModuleDict; ``maybe``: for a
    container, the normalization layers among the children it was built with, and for an item of
    one, the layers it may be (not pinned down: attributes are reported, not renamed)."""

    rules: frozenset = frozenset()
    cls: "ClassInfo | None" = None
    container: bool = False
    origin: frozenset = field(default=frozenset(), compare=False)
    maybe: frozenset = frozenset()

    @property
    def is_layer(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True)
class MaybeLayerT:
    """Possibly a normalization layer (built by a factory the file does not pin down)."""

    rules: frozenset
    origin: frozenset = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class FactoryT:
    """A callable that builds normalization layers: the class itself, an alias, a partial.
    ``certain`` is False for parameters that default to a layer class (``norm_layer=nn.BatchNorm2d``)."""

    rules: frozenset
    certain: bool
    partial: ast.Call | None = None
    origin: frozenset = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class ClassT:
    cls: "ClassInfo"


@dataclass(frozen=True)
class TensorT:
    """Certainly a tensor; ``sequence``: a tuple or list of tensors (what ``chunk`` gives)."""

    sequence: bool = False
    origin: frozenset = field(default=frozenset(), compare=False)


def _returned(rule: "LayerRule", origin: frozenset) -> "TensorT | None":
    """What a call of a function or tensor-method rule gives, as the rule says."""
    if rule.returns == "other":
        return None
    return TensorT(rule.returns == "tensors", origin=origin)


class External:
    """A value defined in another file of the project (see project.py), as the inference sees it:
    what calling it gives, its attributes, the attributes of its instances (for a class)."""

    @staticmethod
    def holds(t) -> bool:
        """Whether a type is a value of another file of the project (a class of it is a ``ClassT``)."""
        if isinstance(t, ClassT):  # a class of the project, or a same-file subclass of one
            return any(isinstance(c, External) for c in t.cls.mro())
        return isinstance(t, External)

    def called(self, types: "Types", call: ast.Call | None):
        return None

    def member(self, types: "Types", attr: str):
        return None

    def attribute(self, types: "Types", attr: str):
        return None


@dataclass(frozen=True)
class SeqT:
    """A list, tuple or dict the file builds of modules (a display, a comprehension): indexing or
    iterating it gives ``item``."""

    item: object
    origin: frozenset = field(default=frozenset(), compare=False)


class _NoneValue:
    """The constant None: joined with a module it leaves the module (``bn if c else None`` is a module
    wherever it is used as one)."""


NONE_VALUE = _NoneValue()


_PENDING = object()  # recursion guard: contributes nothing to a join

# The expressions Types._infer can give a type to (torch references are names and attributes).
_INFERRED = frozenset({ast.Call, ast.Name, ast.Attribute, ast.Subscript, ast.Dict, ast.BoolOp, ast.IfExp,
                       ast.Lambda, ast.List, ast.Tuple, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp,
                       ast.GeneratorExp, ast.BinOp, ast.UnaryOp, ast.Compare})
_DISPLAYS = (ast.List, ast.Tuple, ast.Set)
_MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault", "__setitem__", "add"})
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_MISSING = object()  # a class that does not define the member looked up
# Comparisons that give a bool, not a tensor of them.
_IDENTITY_TESTS = (ast.Is, ast.IsNot, ast.In, ast.NotIn)
# The methods whose parameters (but self) are the tensors a module is called with.
FORWARD_METHODS = ("forward", "construct")

# Methods that return the module they are called on.
SELF_RETURNING = frozenset({
    "train", "eval", "to", "cuda", "cpu", "float", "double", "half", "bfloat16", "type",
    "requires_grad_", "set_train", "apply", "zero_grad", "share_memory",
})


class ClassInfo:
    def __init__(self, node: ast.ClassDef, scope: Scope):
        self.node = node
        self.name = node.name
        self.scope = scope
        self.local_bases: list[ClassInfo] = []
        self.torch_bases: list[str] = []
        self.mindspore_bases: list[str] = []  # MindSpore base classes (a file migrated part way)
        self.is_module = False
        self.norm_rule: "LayerRule | None" = None
        self.origin: frozenset = frozenset()  # the torch base-class references, through local bases
        self.methods: dict[str, ast.FunctionDef] = {
            s.name: s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        self.init = self.methods.get("__init__")
        # Class attributes (``norm = nn.BatchNorm2d`` in the class body), by name.
        self.body_assigns: dict[str, list[ast.expr]] = {}
        for stmt in _own_statements(node):
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                    if isinstance(t, ast.Name):
                        self.body_assigns.setdefault(t.id, []).append(stmt.value)
        self.init_assigns: dict[str, list[ast.expr]] = {}
        self.init_targets: set[int] = set()  # id() of the `self.<attr>` targets of init_assigns
        if self.init is not None:
            for stmt in _own_statements(self.init):
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    for t in targets:
                        if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                                and t.value.id == _first_param(self.init)):
                            self.init_assigns.setdefault(t.attr, []).append(stmt.value)
                            self.init_targets.add(id(t))
                elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                    # setattr(self, "bn", ...), self.add_module("bn", ...): the same as self.bn = ...
                    named = _registered_by_name(stmt.value, _first_param(self.init))
                    if named is not None:
                        self.init_assigns.setdefault(named[0], []).append(named[1])
                        self.init_targets.add(id(stmt.value))

    def mro(self) -> Iterator["ClassInfo"]:
        seen = set()
        stack = [self]
        while stack:
            c = stack.pop(0)
            if id(c) in seen:
                continue
            seen.add(id(c))
            yield c
            stack.extend(c.local_bases)

    def overrides_init(self) -> bool:
        """Whether this class (or a same-file base between it and the torch class) defines __init__."""
        return any(c.init is not None for c in self.mro())

    def __repr__(self) -> str:
        return f"ClassInfo({self.name})"


def _registered_by_name(call: ast.Call, owner: str | None) -> tuple[str, ast.expr] | None:
    """``setattr(self, "bn", value)``, ``self.add_module("bn", value)``: the name and the value."""
    func, args = call.func, call.args
    if isinstance(func, ast.Name) and func.id == "setattr" and len(args) == 3:
        target, name, value = args
    elif isinstance(func, ast.Attribute) and func.attr in ("add_module", "register_module", "insert_child_to_cell") \
            and len(args) == 2:
        target, (name, value) = func.value, args
    else:
        return None
    if isinstance(target, ast.Name) and target.id == owner and isinstance(name, ast.Constant) \
            and isinstance(name.value, str):
        return name.value, value
    return None


def _first_param(fn: ast.FunctionDef) -> str | None:
    args = fn.args.posonlyargs + fn.args.args
    return args[0].arg if args else None


def _own_statements(fn: ast.AST) -> Iterator[ast.stmt]:
    """Statements of a function body, nested blocks included, nested functions/classes excluded."""
    stack = list(reversed(fn.body))
    while stack:
        s = stack.pop()
        yield s
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(s, name, None)
            if block:
                stack.extend(reversed(block))
        if isinstance(s, ast.Match):
            for case in s.cases:
                stack.extend(reversed(case.body))


def own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """Every node inside a function, not descending into nested functions, lambdas or classes."""
    stack = _child_nodes(fn)
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(_child_nodes(n))


def _child_nodes(node: ast.AST) -> list[ast.AST]:
    """``list(ast.iter_child_nodes(node))``, same order, without a generator per node."""
    children = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            children.append(value)
        elif isinstance(value, list):
            children.extend([item for item in value if isinstance(item, ast.AST)])
    return children


class Types:
    """Type queries for one migration, memoised."""

    def __init__(self, mig: "Migration"):
        self.mig = mig
        self.classes: dict[int, ClassInfo] = {}
        self._memo: dict[tuple[int, int], object] = {}
        self._returns: dict[int, object] = {}
        self._transparent: dict[int, bool] = {}
        self._passed: dict[tuple[int, int], list] = {}
        self._sites: dict[int, list] = {}
        self._subclasses: dict[int, list[ClassInfo]] | None = None
        self._stored: set[str] | None = None
        self._members: set[str] | None = None
        self._candidates: list | None = None
        self._stores: dict | None = None
        self._tested_names = _isinstance_tested_names(mig)
        # functools.partial can only be called where functools is imported.
        self._functools = any(b.qual in ("functools", "functools.partial") for b in mig.index.imports)
        self.project = mig.project  # what the file's imports from the project are (None: unknown)
        # MindSpore containers the file may build (only where it imports MindSpore).
        self._ms_containers = frozenset(
            n.mindspore for n in mig.rules.names.values() if n.kind == "container"
        ) if any((b.qual or "").startswith("mindspore") for b in mig.index.imports) else frozenset()
        self._tensor_calls: list | None = None
        # MindSpore layer classes the file may test with isinstance (only where it imports MindSpore).
        self._mindspore_layers = frozenset(
            r.mindspore for r in mig.rules.layers.values() if r.kind == "layer"
        ) if self._ms_containers or any((b.qual or "").startswith("mindspore") for b in mig.index.imports) else frozenset()
        self._mindspore_modules = self._ms_containers | self._mindspore_layers  # what builds a fresh cell
        for node, scope in mig.index.classes:
            self.classes[id(node)] = ClassInfo(node, scope)
        self._resolve_hierarchy()

    # -- classes ---------------------------------------------------------------------------------

    def _resolve_hierarchy(self) -> None:
        rules = self.mig.rules
        for info in self.classes.values():
            for base in info.node.bases:
                ref = self.mig.ref(base)
                if ref is not None:
                    info.torch_bases.append(ref.qual)
                    info.origin |= {id(ref.node)}
                    continue
                local = self.class_of(base, info.scope)
                if local is not None:
                    info.local_bases.append(local)
                    if isinstance(local, External):  # a Cell of another file: this class becomes one
                        info.origin |= {id(base)}
                elif (self.mig.qualified(base, info.scope) or "").startswith("mindspore.nn."):
                    # Already a Cell (a file migrated part way): a module, though nothing to convert.
                    info.is_module = True
                    info.mindspore_bases.append(self.mig.qualified(base, info.scope))
        # Propagate "is a module" / "is a norm layer" through same-file bases to a fixed point.
        changed = True
        while changed:
            changed = False
            for info in self.classes.values():
                is_module = info.is_module
                norm = info.norm_rule
                for q in info.torch_bases:
                    if q in rules.layers and rules.layers[q].kind == "layer":
                        norm = norm or rules.layers[q]
                        is_module = True
                    elif q in rules.names:
                        is_module = True
                origin = info.origin
                for b in info.local_bases:
                    is_module = is_module or b.is_module
                    norm = norm or b.norm_rule
                    origin = origin | b.origin
                if is_module != info.is_module or norm is not info.norm_rule or origin != info.origin:
                    info.is_module, info.norm_rule, info.origin = is_module, norm, origin
                    changed = True

    def class_of(self, expr: ast.expr, scope: Scope) -> ClassInfo | None:
        if not isinstance(expr, ast.Name):
            return self._project_class(expr, scope) if isinstance(expr, ast.Attribute) else None
        found = scope.resolve(expr.id)
        if found is None:
            return self._project_class(expr, scope)
        _, bindings = found
        if len(bindings) == 1 and bindings[0].kind == "class":
            return self.classes.get(id(bindings[0].node))
        if len(bindings) == 1 and bindings[0].kind == "import":
            return self._project_class(expr, scope)
        return None

    def _project_class(self, expr: ast.expr, scope: Scope):
        """A class of another file of the project (a ``ProjectClass``), if ``expr`` names one."""
        if self.project is None:
            return None
        t = self.of(expr, scope)
        return t.cls if isinstance(t, ClassT) and isinstance(t.cls, External) else None

    def module_classes(self) -> list[ClassInfo]:
        """Same-file classes that become Cells: subclasses of a torch module class."""
        return [c for c in self.classes.values() if c.is_module and c.origin]

    def enclosing_class(self, fn: ast.AST) -> ClassInfo | None:
        p = self.mig.parent(fn)
        return self.classes.get(id(p)) if isinstance(p, ast.ClassDef) else None

    # -- expressions -----------------------------------------------------------------------------

    def of(self, expr: ast.expr, scope: Scope):
        if expr.__class__ not in _INFERRED:
            if expr.__class__ is ast.Constant and expr.value is None:
                return NONE_VALUE
            return None  # a constant, an operation, ...: never a module nor a factory (no need to memoise)
        key = (id(expr), id(scope))
        memo = self._memo.get(key)
        if memo is not None:
            return None if memo is _NONE else memo
        self._memo[key] = _PENDING
        result = self._infer(expr, scope)
        self._memo[key] = _NONE if result is None else result
        return result

    def _infer(self, expr: ast.expr, scope: Scope):
        t = type(expr)
        if t is ast.Call:  # the commonest question; a call is never a torch reference itself
            return self._call(expr, scope)
        if t is ast.BinOp or t is ast.UnaryOp or t is ast.Compare:
            return self._arithmetic(expr, scope)
        mig = self.mig
        ref = mig.ref(expr)
        if ref is not None:
            rule = mig.rules.layers.get(ref.qual)
            if rule is not None and rule.kind == "layer":
                return FactoryT(frozenset([rule]), True, origin=frozenset([id(ref.node)]))
            return None
        if t is ast.Name:
            return self._name(expr, scope)
        if t is ast.Attribute:
            base = self.of(expr.value, scope)
            if isinstance(expr.value, ast.Name):
                stored = self._stored_on(expr.value, expr.attr, scope)
                if stored:
                    # holder.norm = nn.BatchNorm2d(4) outside __init__ (and what __init__ put there)
                    cls = base.cls if isinstance(base, ModuleT) else None
                    init = [(v, self.mig.index.scope_of.get(id(c.init))) for c in (cls.mro() if cls else ())
                            for v in c.init_assigns.get(expr.attr, ())]
                    return self._join([self.of(v, s) for v, s in (*stored, *init)])
            if isinstance(base, ModuleT) and base.cls is not None:
                return self.attribute_of(base.cls, expr.attr)
            if isinstance(base, External):  # `M.Net` of `import models as M`
                return base.member(self, expr.attr)
            if isinstance(base, ClassT):
                return self.class_member(base.cls, expr.attr)
            return None
        if t is ast.Lambda:
            return FunctionT(expr)
        if t in _DISPLAYS:
            # [nn.BatchNorm2d, nn.LayerNorm]: indexing or iterating it may give either.
            items = [self.of(v, scope) for v in expr.elts]
            return self._registry(items) or self._sequence(items)
        if t in _COMPREHENSIONS:
            inner = self.mig.index.scope_of.get(id(expr), scope)
            item = self.of(expr.value if t is ast.DictComp else expr.elt, inner)
            return self._sequence([item]) if t is not ast.GeneratorExp else None
        if t is ast.Subscript:
            base = self.of(expr.value, scope)
            if isinstance(base, TensorT):  # an element, a slice or an index of tensors: a tensor
                return TensorT(origin=base.origin)
            item = self._container_item(expr, scope)
            if item is not None:  # relies on the container's conversion as much as on the item's
                return replace(item, origin=item.origin | origin_of(base))
            if isinstance(base, ModuleT) and base.container:
                return ModuleT(origin=base.origin, maybe=base.maybe)
            if isinstance(base, SeqT) and not isinstance(expr.slice, ast.Slice):
                return base.item
            if isinstance(base, FactoryT):
                return FactoryT(base.rules, False, origin=base.origin)  # a registry lookup: maybe that layer
            return None
        if t is ast.Dict:
            # A registry of layer classes ({"bn": nn.BatchNorm2d, ...}): looking it up may give one.
            values = [self.of(v, scope) for v in expr.values if v is not None]
            return self._registry(values) or self._sequence(values)
        if t is ast.BoolOp and isinstance(expr.op, ast.Or):
            parts = [self.of(v, scope) for v in expr.values]
            factories = [p for p in parts if isinstance(p, FactoryT)]
            if factories:
                return FactoryT(_union(f.rules for f in factories), False, origin=_union(f.origin for f in factories))
            modules = [p for p in parts if isinstance(p, (ModuleT, MaybeLayerT))]
            if not modules:
                return None
            known = [p for p in parts if p is not NONE_VALUE and p is not _PENDING]
            if len(known) == len(modules):  # None or nn.BatchNorm2d(c)
                return self._join(known)
            # bn or nn.BatchNorm2d(c): maybe the layer built here
            return MaybeLayerT(_union(m.rules for m in modules), origin=_union(m.origin for m in modules))
        if t is ast.IfExp:
            return self._join([self.of(expr.body, scope), self.of(expr.orelse, scope)])
        return None

    def _arithmetic(self, expr: ast.expr, scope: Scope):
        """Arithmetic on a tensor gives a tensor (``x * 2``, ``-x``, ``x > 0``)."""
        if isinstance(expr, ast.BinOp):
            operands = [expr.left, expr.right]
        elif isinstance(expr, ast.UnaryOp):
            if isinstance(expr.op, ast.Not):
                return None
            operands = [expr.operand]
        else:
            if len(expr.ops) != 1 or isinstance(expr.ops[0], _IDENTITY_TESTS):
                return None
            operands = [expr.left, *expr.comparators]
        tensors = [t for t in (self.of(o, scope) for o in operands) if isinstance(t, TensorT) and not t.sequence]
        return TensorT(origin=_union(t.origin for t in tensors)) if tensors else None

    def tensor_method_calls(self) -> list[tuple[ast.Call, "LayerRule", TensorT, Scope]]:
        """Every call of a tensor method the rules know on a value known to be a torch tensor, in order."""
        if self._tensor_calls is None:
            methods = self.mig.rules.methods
            parents = self.mig.index.parents
            calls = []
            for attr, scope in self.mig.index.attributes:
                rule = methods.get(attr.attr)
                if rule is None:
                    continue
                call = parents.get(attr)
                if not (isinstance(call, ast.Call) and call.func is attr):
                    continue
                receiver = self.of(attr.value, scope)
                # A tensor nothing makes MindSpore's is MindSpore's already (a Cell's input, what
                # mindspore.ops gives): its methods are MindSpore's, spelled so.
                if isinstance(receiver, TensorT) and not receiver.sequence and receiver.origin:
                    calls.append((call, rule, receiver, scope))
            self._tensor_calls = calls
        return self._tensor_calls

    def _call(self, call: ast.Call, scope: Scope):
        mig = self.mig
        func = call.func
        ref = mig.ref(func)
        if ref is not None:
            rules = mig.rules
            rule = rules.layers.get(ref.qual)
            if rule is not None and rule.kind == "layer":
                return ModuleT(frozenset([rule]), origin=frozenset([id(call)]))
            if rule is not None and rule.kind == "function":
                return _returned(rule, frozenset([id(call)]))
            name = rules.names.get(ref.qual)
            if name is not None:
                container = name.kind == "container"
                return ModuleT(container=container, origin=frozenset([id(ref.node)]),
                               maybe=self._children_rules(call, scope) if container else frozenset())
            return None
        if self._ms_containers and isinstance(func, (ast.Name, ast.Attribute)) \
                and mig.qualified(func, scope) in self._ms_containers:
            return ModuleT(container=True)  # a MindSpore container (a file migrated part way)
        if isinstance(func, ast.Name) and func.id == "dict" and scope.resolve("dict") is None:
            return self._registry([self.of(k.value, scope) for k in call.keywords])
        if isinstance(func, ast.Name) and func.id == "getattr" and 2 <= len(call.args) <= 3 \
                and not call.keywords and scope.resolve("getattr") is None:
            return self._getattr(call, scope)
        if isinstance(func, ast.Attribute) and func.attr == "get" and call.args:
            base = self.of(func.value, scope)
            if isinstance(base, FactoryT):  # REGISTRY.get("bn"): maybe that layer
                got = FactoryT(base.rules, False, origin=base.origin)
                return self._join([got, self.of(call.args[1], scope)]) if len(call.args) > 1 else got
            return None
        if call.args and self._functools and is_partial(mig, func, scope):
            target = self.of(call.args[0], scope)
            if isinstance(target, FactoryT):
                return FactoryT(target.rules, target.certain, call, origin=target.origin | {id(call)})
            return None
        if isinstance(func, ast.Attribute):
            method = mig.rules.methods.get(func.attr)
            if func.attr in SELF_RETURNING or method is not None:
                base = self.of(func.value, scope)
                if isinstance(base, (ModuleT, MaybeLayerT)) and func.attr in SELF_RETURNING:
                    return base
                if isinstance(base, TensorT) and not base.sequence and method is not None:
                    return _returned(method, base.origin)
                if func.attr in SELF_RETURNING:
                    return None
        callee = self.of(func, scope)
        if isinstance(callee, ClassT) and callee.cls.is_module:
            cls = callee.cls
            rules = frozenset([cls.norm_rule]) if cls.norm_rule else frozenset()
            return ModuleT(rules, cls, origin=cls.origin | {id(call)})
        if isinstance(callee, FactoryT):
            origin = callee.origin | {id(call)}
            return ModuleT(callee.rules, origin=origin) if callee.certain else MaybeLayerT(callee.rules, origin=origin)
        if isinstance(callee, FunctionT):
            passed = self._passed_through(callee.node, call, scope)
            return passed if passed is not _MISSING else self._returns_of(callee.node)
        if isinstance(callee, External):  # a function of another file of the project
            return callee.called(self, call)
        if isinstance(callee, ModuleT):
            return TensorT(origin=callee.origin)  # calling a module: its output
        if isinstance(func, (ast.Attribute, ast.Name)) and (mig.qualified(func, scope) or "").startswith("mindspore.ops."):
            return TensorT()  # a file part way through its migration
        return None

    def _passed_through(self, fn: ast.AST, call: ast.Call, scope: Scope):
        """For a function that returns one of its parameters (``def keep(m): return m``), the type
        of what this call passes there; _MISSING for other functions."""
        fn_scope = self.mig.index.scope_of.get(id(fn))
        if fn_scope is None:
            return _MISSING
        values = [fn.body] if isinstance(fn, ast.Lambda) else [r.value for r in fn_scope.returns]
        if not values or not all(isinstance(v, ast.Name) for v in values):
            return _MISSING
        args = fn.args
        positional = args.posonlyargs + args.args
        if isinstance(self.mig.parent(fn), ast.ClassDef) and not _is_static(fn):
            positional = positional[1:]  # obj.method(...): self is not in the call
        results = []
        for v in values:
            bindings = fn_scope.bindings.get(v.id, ())
            if len(bindings) != 1 or bindings[0].kind != "param":
                return _MISSING
            arg = bindings[0].node
            value = _argument_for(call, positional, arg)
            if value is None:
                value = _default_of(args, arg)
                if value is None:
                    return None
                results.append(self.of(value, fn_scope.parent or fn_scope))
            else:
                results.append(self.of(value, scope))
        return self._join(results)

    def _name(self, node: ast.Name, scope: Scope):
        if node.id in self._tested_names:
            narrowed = self.narrowed(node, scope)
            if narrowed is not None:
                return narrowed
        found = scope.resolve(node.id)
        if found is None:  # a builtin, or a name from `from <project module> import *`
            return self.project.star(self, node.id, scope) if self.project is not None else None
        where, bindings = found
        if len(bindings) > 1 and where.kind == "function":
            # Forward code rebinds its tensors freely (x = x.to(dtype); out = self.layer(out)): the
            # bindings that can reach this use may all be tensors when the others are not. Following
            # them alone also keeps clear of the cycles that rebinding a name makes.
            reaching = _reaching(self.mig, node, bindings)
            if reaching is not None and len(reaching) < len(bindings):
                narrowed = self._join([self._binding(b, where) for b in reaching])
                if isinstance(narrowed, TensorT):
                    return narrowed
        results = []
        for b in bindings:
            if b.kind == "assign" and rebinds_itself(b):
                continue  # model = model.to(device): the same object, whatever it is
            results.append(self._binding(b, where))
        result = self._join(results) if results else None
        if isinstance(result, SeqT) and self._mutated(node.id, where):
            return None  # items added or replaced later may be anything
        return result

    def _children_rules(self, call: ast.Call, scope: Scope) -> frozenset:
        """The normalization layers among the modules a container is built with (through displays)."""
        stack = [*call.args, *(k.value for k in call.keywords)]
        out: frozenset = frozenset()
        while stack:
            e = stack.pop()
            if isinstance(e, _DISPLAYS):
                stack.extend(e.elts)
            elif isinstance(e, ast.Dict):
                stack.extend(v for v in e.values if v is not None)
            elif isinstance(e, ast.Starred):
                stack.append(e.value)
            elif isinstance(e, (ast.ListComp, ast.GeneratorExp)):
                stack.append(e.elt)
            elif isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in ("OrderedDict", "list"):
                stack.extend(e.args)
            else:
                t = self.of(e, self.mig.index.scope_of.get(id(self.mig.parent(e)), scope)
                            if isinstance(self.mig.parent(e), (ast.ListComp, ast.GeneratorExp)) else scope)
                if isinstance(t, (ModuleT, MaybeLayerT)):
                    out |= t.rules | getattr(t, "maybe", frozenset())
        return out

    def _container_item(self, expr: ast.Subscript, scope: Scope):
        """``seq[0]``, ``heads["a"]``: the item of a container a name is bound to once, built here
        from the modules it lists, and never changed in place."""
        name, key = expr.value, expr.slice
        if isinstance(key, ast.UnaryOp) and isinstance(key.op, ast.USub) and isinstance(key.operand, ast.Constant) \
                and isinstance(key.operand.value, int):
            key = ast.Constant(-key.operand.value)  # layers[-1]
        if not (isinstance(name, ast.Name) and isinstance(key, ast.Constant)):
            return None
        found = scope.resolve(name.id)
        if found is None or self._mutated(name.id, found[0]):
            return None
        bindings = [b for b in found[1] if not (b.kind == "assign" and rebinds_itself(b))]  # seq = seq.train()
        if len(bindings) != 1:
            return None
        b = bindings[0]
        call = b.value
        if b.kind != "assign":
            return None
        if isinstance(call, (ast.List, ast.Tuple, ast.Dict)):
            items = call  # a display: layers = {"a": nn.BatchNorm1d(4), ...}
        else:
            if not isinstance(call, ast.Call) or call.keywords:
                return None
            if self.mig.ref(call.func) is None and self.mig.qualified(call.func, found[0]) not in self._ms_containers:
                return None
            items = list(call.args)
            if len(items) == 1 and isinstance(items[0], (ast.List, ast.Tuple, ast.Dict)):
                items = items[0]  # ModuleList([...]), ModuleDict({...})
        if isinstance(items, ast.Dict):
            keys = [k.value if isinstance(k, ast.Constant) else _MISSING for k in items.keys]
            if key.value not in keys:
                return None
            value = items.values[keys.index(key.value)]
        else:
            elts = items.elts if isinstance(items, (ast.List, ast.Tuple)) else items
            if not isinstance(key.value, int) or any(isinstance(e, ast.Starred) for e in elts) \
                    or not -len(elts) <= key.value < len(elts):
                return None
            value = elts[key.value]
        t = self.of(value, found[0])
        return t if isinstance(t, (ModuleT, MaybeLayerT)) else None

    def _stored_on(self, name: ast.Name, attr: str, scope: Scope) -> list[tuple[ast.expr, Scope]]:
        """The values the file assigns to ``<name>.<attr>`` (``name`` bound as here), with their scope."""
        if self._stores is None:
            stores: dict[str, list] = {}
            for stmt, s in self.mig.index.attribute_assignments:
                target = stmt.targets[0]
                if isinstance(target.value, ast.Name):
                    stores.setdefault(target.attr, []).append((target.value, stmt.value, s))
            self._stores = stores
        candidates = self._stores.get(attr)
        if not candidates:
            return []
        here = scope.resolve(name.id)
        if here is None:
            return []
        out = []
        for owner, value, s in candidates:
            found = s.resolve(owner.id) if owner.id == name.id else None
            if found is not None and found[0] is here[0]:
                out.append((value, s))
        return out

    def _mutated(self, name: str, where: Scope) -> bool:
        """Whether a collection bound to ``name`` is changed in place anywhere (``.append(...)``,
        ``x[i] = ...``)."""
        for load, s in self.mig.index.loads.get(name, ()):
            parent = self.mig.parent(load)
            if isinstance(parent, ast.Attribute) and parent.attr in _MUTATORS:
                found = s.resolve(name)
                if found is not None and found[0] is where:
                    return True
            if isinstance(parent, ast.Subscript) and not isinstance(parent.ctx, ast.Load):
                found = s.resolve(name)
                if found is not None and found[0] is where:
                    return True
        return False

    def _binding(self, b: Binding, where: Scope):
        if b.kind == "class":
            info = self.classes.get(id(b.node))
            return ClassT(info) if info is not None else None
        if b.kind == "def":
            return FunctionT(b.node)
        if b.kind == "assign" and b.value is not None:
            return self.of(b.value, where)
        if b.kind == "assign":
            return self._bound_elsewhere(b, where)
        if b.kind == "for" and b.value is not None:
            it = self.of(b.value, where)
            if isinstance(it, ModuleT) and it.container:
                return ModuleT(origin=it.origin, maybe=it.maybe)
            if isinstance(it, FactoryT) and self._iterates_values(b.value, where):
                return FactoryT(it.rules, False, origin=it.origin)  # for norm in (nn.BatchNorm2d, ...)
            if isinstance(it, SeqT) and self._iterates_values(b.value, where):
                return it.item
            if isinstance(it, TensorT):  # the rows of a tensor, or the tensors of a sequence
                return TensorT(origin=it.origin)
            owner = _module_iteration(self, b.value, where)
            loop = self.mig.parent(self.mig.parent(b.node))
            if owner is None and isinstance(loop, (ast.For, ast.AsyncFor)) and _second_of_pair(self.mig, b.node, loop.target):
                owner = _module_iteration(self, b.value, where, named=True)
            if owner is None and isinstance(b.value, ast.GeneratorExp):  # (cell for _, cell in m.cells_and_names())
                item = self.of(b.value.elt, self.mig.index.scope_of.get(id(b.value), where))
                owner = item if isinstance(item, ModuleT) and not item.container else None
            if owner is not None:
                return ModuleT(origin=owner.origin)
            return None
        if b.kind == "param":
            return self._param(b)
        if b.kind == "import" and self.project is not None:
            return self.project.binding(self, b)
        return None

    def _bound_elsewhere(self, b: Binding, where: Scope):
        """A name bound by tuple unpacking (``a, b = C1, C2``, ``a, b = <tensors>``), a walrus, a
        comprehension's loop, or ``x += y`` (what it was: neutral)."""
        node = b.node
        parent = self.mig.parent(node)
        if isinstance(parent, ast.AugAssign):
            return _PENDING  # contributes nothing to a join: x op= y keeps x's kind
        if isinstance(parent, ast.NamedExpr) and parent.target is node:
            return self.of(parent.value, b.scope)
        if isinstance(parent, ast.comprehension) and parent.target is node:
            comp = self.mig.parent(parent)
            it_scope = b.scope if comp.generators[0] is not parent else (b.scope.parent or b.scope)
            it = self.of(parent.iter, it_scope)
            if isinstance(it, ModuleT) and it.container:
                return ModuleT(origin=it.origin, maybe=it.maybe)
            if isinstance(it, (SeqT, FactoryT)) and self._iterates_values(parent.iter, it_scope):
                return it.item if isinstance(it, SeqT) else FactoryT(it.rules, False, origin=it.origin)
            owner = _module_iteration(self, parent.iter, it_scope)
            return ModuleT(origin=owner.origin) if owner is not None else None
        if isinstance(parent, ast.Tuple) and isinstance(self.mig.parent(parent), ast.comprehension) \
                and _second_of_pair(self.mig, node, self.mig.parent(parent).target):
            generator = self.mig.parent(parent)
            comp = self.mig.parent(generator)
            it_scope = b.scope if comp.generators[0] is not generator else (b.scope.parent or b.scope)
            owner = _module_iteration(self, generator.iter, it_scope, named=True)
            return ModuleT(origin=owner.origin) if owner is not None else None
        if isinstance(parent, (ast.Tuple, ast.List)):
            stmt = self.mig.parent(parent)
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and stmt.targets[0] is parent
                    and isinstance(stmt.value, (ast.Tuple, ast.List))
                    and len(stmt.value.elts) == len(parent.elts)
                    and not any(isinstance(e, ast.Starred) for e in (*parent.elts, *stmt.value.elts))):
                value = stmt.value.elts[parent.elts.index(node)]
                return self.of(value, where)
            if isinstance(stmt, ast.Assign) and parent in stmt.targets:
                t = self.of(stmt.value, where)
                if isinstance(t, TensorT):
                    return TensorT(origin=t.origin)
        return None

    def _param(self, b: Binding):
        arg: ast.arg = b.node
        args: ast.arguments = self.mig.parent(arg)
        fn = self.mig.parent(args)
        # `self` of a method of a module class.
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            positional = args.posonlyargs + args.args
            if positional and positional[0] is arg and not _is_static(fn):
                cls = self.enclosing_class(fn)
                if cls is not None and cls.is_module:
                    rules = frozenset([cls.norm_rule]) if cls.norm_rule else frozenset()
                    return ModuleT(rules, cls, origin=cls.origin)
            if positional and positional[0] is arg and _is_classmethod(fn):
                cls = self.enclosing_class(fn)
                if cls is not None:
                    return ClassT(cls)
            # The inputs of forward/construct: what the module is called with.
            if fn.name in FORWARD_METHODS and (arg in positional[1:] or arg in args.kwonlyargs) \
                    and not _is_static(fn) and _may_be_tensor(arg, _default_of(args, arg)):
                cls = self.enclosing_class(fn)
                if cls is not None and cls.is_module:
                    return TensorT(origin=cls.origin)
        # A layer class it defaults to, or that a call in this file passes: maybe that layer.
        factories = []
        default = _default_of(args, arg)
        if default is not None:
            t = self.of(default, b.scope.parent or b.scope)
            if isinstance(t, FactoryT):
                factories.append(t)
        factories.extend(self._passed_factories(fn, args, arg))
        if factories:
            return FactoryT(_union(f.rules for f in factories), False, origin=_union(f.origin for f in factories))
        return None

    def _passed_factories(self, fn: ast.AST, args: ast.arguments, arg: ast.arg) -> list:
        """The factories (layer classes, partials) the calls of ``fn`` in this file pass as ``arg``."""
        key = (id(fn), id(arg))
        found = self._passed.get(key)
        if found is not None:
            return found
        self._passed[key] = []  # recursion guard
        found = []
        sites = self._sites.get(id(fn))
        if sites is None:
            sites = self._sites[id(fn)] = self._call_sites(fn)
        if sites:
            positional = args.posonlyargs + args.args
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == "__init__":
                positional = positional[1:]  # Cls(...) calls __init__(self, ...)
            for call, caller_scope in sites:
                value = _argument_for(call, positional, arg)
                if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)) or (
                        isinstance(value, ast.Call) and _names_partial(value.func)):  # what can be a factory
                    t = self.of(value, caller_scope)
                    if isinstance(t, FactoryT):
                        found.append(t)
        self._passed[key] = found
        return found

    def values_passed(self, name: ast.expr, scope: Scope) -> tuple[ast.expr, ...]:
        """What ``name``, a parameter of a same-file function or lambda, is given by this file: its
        default and the arguments the calls of the function in this file pass for it (empty for
        anything else)."""
        if not isinstance(name, ast.Name):
            return ()
        found = scope.resolve(name.id)
        if found is None or len(found[1]) != 1 or found[1][0].kind != "param":
            return ()
        arg = found[1][0].node
        args = self.mig.parent(arg)
        fn = self.mig.parent(args)
        default = _default_of(args, arg)
        positional = args.posonlyargs + args.args
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == "__init__":
            positional = positional[1:]
        sites = self._sites.get(id(fn))
        if sites is None:
            sites = self._sites[id(fn)] = self._call_sites(fn)
        passed = [_argument_for(call, positional, arg) for call, _scope in sites]
        return tuple(v for v in (default, *passed) if v is not None)

    def _call_sites(self, fn: ast.AST) -> list[tuple[ast.Call, Scope]]:
        """The calls of ``fn`` by name in this file: a function, a lambda assigned to a name, or the
        __init__ of a class (its class's calls). Methods called through attributes are not followed."""
        index = self.mig.index
        parent = self.mig.parent(fn)
        if isinstance(fn, ast.Lambda):
            if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1
                    and isinstance(parent.targets[0], ast.Name)):
                return []
            name, owner = parent.targets[0].id, index.scope_of[id(fn)].parent
        elif isinstance(parent, ast.ClassDef):
            if fn.name != "__init__":
                return []
            name, owner = parent.name, index.scope_of[id(fn)].parent.parent
        else:
            name, owner = fn.name, index.scope_of[id(fn)].parent
        out = []
        for load, s in index.loads.get(name, ()):
            call = self.mig.parent(load)
            if isinstance(call, ast.Call) and call.func is load:
                found = s.resolve(name)
                if found is not None and found[0] is owner:
                    out.append((call, s))
        return out

    def _iterates_values(self, it: ast.expr, scope: Scope) -> bool:
        """Whether iterating ``it`` gives its values (a list/tuple/set display, a name bound to one,
        ``registry.values()``), not the keys of a dict."""
        if isinstance(it, (*_DISPLAYS, ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            return True
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "values":
            return True
        if isinstance(it, ast.Name):
            found = scope.resolve(it.id)
            return found is not None and all(
                isinstance(b.value, (*_DISPLAYS, ast.ListComp, ast.SetComp)) for b in found[1])
        return False

    def _getattr(self, call: ast.Call, scope: Scope):
        """``getattr(obj, "name"[, default])`` on a same-file module or class."""
        base = self.of(call.args[0], scope)
        if isinstance(base, ModuleT) and base.cls is not None:
            cls, lookup = base.cls, self.attribute_of
        elif isinstance(base, ClassT):
            cls, lookup = base.cls, self.class_member
        else:
            return None
        name = call.args[1]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            t = lookup(cls, name.value)
        else:
            # A computed name: any class attribute of the class (or of a subclass) may be meant.
            members = sorted({a for k in (cls, *self.subclasses(cls)) for c in k.mro() for a in c.body_assigns})
            factories = [m for m in (self.class_member(cls, a) for a in members) if isinstance(m, FactoryT)]
            if not factories:
                return None
            t = FactoryT(_union(f.rules for f in factories), False, origin=_union(f.origin for f in factories))
        if len(call.args) == 3:
            t = self._join([t, self.of(call.args[2], scope)])
        return t

    @staticmethod
    def _sequence(items: list):
        """The items of a collection when every one is a module (None aside)."""
        items = [i for i in items if i is not NONE_VALUE and i is not _PENDING]
        if items and all(isinstance(i, (ModuleT, MaybeLayerT)) for i in items):
            first = items[0]
            if all(i == first for i in items):
                item = first
            elif all(isinstance(i, ModuleT) for i in items):
                item = ModuleT(_union(i.rules for i in items) if all(i.is_layer for i in items) else frozenset())
            else:
                item = MaybeLayerT(_union(i.rules for i in items))
            origin = _union(i.origin for i in items)
            return SeqT(replace(item, origin=origin), origin=origin)
        return None

    @staticmethod
    def _registry(values: list):
        factories = [v for v in values if isinstance(v, FactoryT)]
        if not factories:
            return None
        return FactoryT(_union(f.rules for f in factories), False, origin=_union(f.origin for f in factories))

    def _join(self, results: list):
        if len(results) == 1:  # the common case (a name bound once): the result itself
            result = results[0]
            return None if result is _PENDING or result is NONE_VALUE else result
        results = [r for r in results if r is not _PENDING and r is not NONE_VALUE]
        origin = _union(getattr(r, "origin", frozenset()) for r in results)
        if not results or any(r is None for r in results):
            factories = [r for r in results if isinstance(r, FactoryT)]
            if factories:
                return FactoryT(_union(f.rules for f in factories), False, origin=origin)
            return None
        first = results[0]
        if all(r == first for r in results):
            return replace(first, origin=origin) if hasattr(first, "origin") else first
        if all(isinstance(r, ModuleT) for r in results):
            rules = _union(r.rules for r in results)
            all_layers = all(r.is_layer for r in results)
            if all_layers:
                return ModuleT(rules, origin=origin)
            return ModuleT(origin=origin, maybe=_union(r.rules | r.maybe for r in results if not r.container))
        if all(isinstance(r, FactoryT) for r in results):
            return FactoryT(_union(r.rules for r in results), all(r.certain for r in results), origin=origin)
        if all(isinstance(r, (ModuleT, MaybeLayerT)) for r in results):
            return MaybeLayerT(_union(r.rules for r in results), origin=origin)
        return None

    def attribute_of(self, cls: ClassInfo, attr: str):
        for c in cls.mro():
            if isinstance(c, External):  # a class of another file: its summary knows
                found = c.attribute(self, attr)
                if found is not None:
                    return found
                continue
            values = c.init_assigns.get(attr)
            if values:
                init_scope = self.mig.index.scope_of.get(id(c.init))
                return self._join([self.of(v, init_scope) for v in values])
        return self.class_member(cls, attr)

    def class_member(self, cls: ClassInfo, attr: str):
        """A method or class attribute (``norm = nn.BatchNorm2d``) looked up on an instance of ``cls``,
        which may be one of a same-file subclass that overrides it; not pinned down (joined with
        unknown) when the file stores an attribute of that name anywhere else."""
        found = self._class_level(cls, attr)
        if found is _MISSING:
            return None
        results = [found]
        scope_of = self.mig.index.scope_of
        for sub in self.subclasses(cls):
            inits = [(c, v) for c in sub.mro() for v in c.init_assigns.get(attr, ())]
            if inits:  # an instance attribute of the subclass hides the class's
                results.append(self._join([self.of(v, scope_of.get(id(c.init))) for c, v in inits]))
            else:
                results.append(self._class_level(sub, attr))
        if attr in self.stored_attributes():
            results.append(None)
        return self._join(results)

    def _class_level(self, cls: ClassInfo, attr: str):
        for c in cls.mro():
            fn = c.methods.get(attr)
            if fn is not None:
                return FunctionT(fn) if _plain_method(fn) else None
            values = c.body_assigns.get(attr)
            if values:
                body_scope = self.mig.index.scope_of.get(id(c.node))
                return self._join([self.of(v, body_scope) for v in values])
        return _MISSING

    def candidate_calls(self) -> list[tuple[ast.Call, Scope]]:
        """The calls whose callee may build modules or norm layers, cheaply told from the rest: calls
        of torch names, of names the file binds (not imports, not builtins), of the file's methods and
        class attributes, of subscripts (registries) and of calls (``partial(...)(c)``)."""
        if self._candidates is None:
            mig = self.mig
            members = self.member_names() | self._factory_attributes()
            # What the file imports from other files of the project (classes, functions, factories).
            imported = (mig.project.factory_names(mig) | mig.project.project_names(mig)) if mig.project is not None \
                else set()
            # Names a star import of a project module may bring in (bound by nothing in the file).
            stars = mig.project is not None and bool(mig.project.stars(mig.tree))
            out = []
            bound: dict[tuple[int, str], bool] = {}  # (scope, name): bound by the file, not imported
            for call, scope in mig.index.calls:
                func = call.func
                kind = func.__class__
                if kind is ast.Attribute:
                    root = func.value
                    while root.__class__ is ast.Attribute:
                        root = root.value
                    if func.attr not in members and func.attr not in ("__init__", "get") and mig.ref(func) is None \
                            and not (root.__class__ is ast.Name and root.id in imported):  # M.Net() of a project module
                        continue
                elif kind is ast.Name:
                    key = (id(scope), func.id)
                    local = bound.get(key)
                    if local is None:
                        found = scope.resolve(func.id)
                        local = bound[key] = (any(b.kind != "import" for b in found[1]) if found is not None
                                              else stars)
                    if not local and mig.ref(func) is None and func.id not in imported:
                        continue
                elif kind is not ast.Subscript and kind is not ast.Call:
                    continue
                out.append((call, scope))
            self._candidates = out
        return self._candidates

    def _factory_attributes(self) -> set[str]:
        """Attribute names the file assigns a layer class or partial to (``cfg.norm = nn.BatchNorm2d``)."""
        names: set[str] = set()
        for stmt, scope in self.mig.index.attribute_assignments:
            value = stmt.value
            if isinstance(value, ast.Call):  # only partial(...) makes a factory (cheap test first)
                if not _names_partial(value.func):
                    continue
            elif not isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)):
                continue
            if isinstance(self.of(value, scope), FactoryT):
                names.add(stmt.targets[0].attr)
        return names

    def member_names(self) -> set[str]:
        """The names of every method and class attribute of the file's classes."""
        if self._members is None:
            self._members = {n for c in self.classes.values() for n in (*c.methods, *c.body_assigns)}
        return self._members

    def subclasses(self, cls: ClassInfo) -> list[ClassInfo]:
        """The same-file classes that derive from ``cls``, directly or not."""
        if self._subclasses is None:
            subs: dict[int, list[ClassInfo]] = {}
            for k in self.classes.values():
                for c in k.mro():
                    if c is not k:
                        subs.setdefault(id(c), []).append(k)
            self._subclasses = subs
        return self._subclasses.get(id(cls), [])

    def stored_attributes(self) -> set[str]:
        """Attribute names the file assigns other than as ``self.<attr> = ...`` in an ``__init__``
        (those are known per class), or sets with ``setattr(obj, "<attr>", ...)``."""
        if self._stored is None:
            in_init = set()
            for c in self.classes.values():
                in_init |= c.init_targets
            stored = {a.attr for a, _ in self.mig.index.attributes
                      if isinstance(a.ctx, ast.Store) and id(a) not in in_init}
            for load, _ in self.mig.index.loads.get("setattr", ()):
                call = self.mig.parent(load)
                if isinstance(call, ast.Call) and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) \
                        and id(call) not in in_init:
                    stored.add(str(call.args[1].value))
            self._stored = stored
        return self._stored

    def _returns_of(self, fn: ast.AST):
        key = id(fn)
        if key in self._returns:
            r = self._returns[key]
            return None if r is _PENDING else r
        self._returns[key] = _PENDING
        scope = self.mig.index.scope_of.get(key)
        if isinstance(fn, ast.Lambda):
            values = [fn.body]
        else:
            values = [n.value for n in scope.returns] if scope is not None else []
        result = None
        if scope is not None and values and all(v is not None for v in values):
            result = self._join([self.of(v, scope) for v in values])
            if not isinstance(result, (ModuleT, MaybeLayerT, TensorT)):
                result = None
        self._returns[key] = result
        return result

    # -- constructions ---------------------------------------------------------------------------

    def fresh(self, call: ast.Call, scope: Scope) -> bool:
        """Whether ``call`` builds a new module (a layer, a container, a same-file module class, a
        factory's product, or what a transparent function builds), as opposed to handing back one
        that exists (``m.to(device)``, a function that returns a module it set up)."""
        func = call.func
        if self.mig.ref(func) is not None:
            return isinstance(self.of(call, scope), (ModuleT, MaybeLayerT))
        if isinstance(func, ast.Attribute) and func.attr in SELF_RETURNING:
            return False  # m.to(device): m itself, when m is a module
        if self._mindspore_modules and isinstance(func, (ast.Name, ast.Attribute)) \
                and self.mig.qualified(func, scope) in self._mindspore_modules:
            return True  # a MindSpore layer or container built (a file migrated part way)
        callee = self.of(func, scope)
        if isinstance(callee, External):  # a class or a function of another file of the project
            return isinstance(self.of(call, scope), (ModuleT, MaybeLayerT))
        if not isinstance(callee, (ClassT, FactoryT, FunctionT)):
            return False  # (the cheap answer for most calls)
        if not isinstance(self.of(call, scope), (ModuleT, MaybeLayerT)):
            return False
        if isinstance(callee, FunctionT):
            if self._passed_through(callee.node, call, scope) is not _MISSING:
                return False  # keep(m): hands back what it is given
            return self.transparent(callee.node)
        return isinstance(callee, (ClassT, FactoryT))

    def transparent(self, fn: ast.AST) -> bool:
        """Whether the calls of a same-file function (or lambda) stand for the constructions it
        returns: every return value is a construction (``return nn.BatchNorm2d(c)``) and the file
        only ever calls the function by name (never passes it on), so whatever its callers do with
        the result decides the mode, as if they had written the construction themselves."""
        key = id(fn)
        known = self._transparent.get(key)
        if known is not None:
            return known
        self._transparent[key] = False  # recursion guard: a function returning its own call is not
        result = self._is_transparent(fn)
        self._transparent[key] = result
        return result

    def _is_transparent(self, fn: ast.AST) -> bool:
        scope = self.mig.index.scope_of.get(id(fn))
        if scope is None:
            return False
        if isinstance(fn, ast.Lambda):
            values = [fn.body]
        else:
            if not _plain_method(fn):
                return False
            values = [r.value for r in scope.returns]
        if not values or any(v is None for v in values):
            return False
        for v in values:
            core = strip_self_returning(v)
            if not (isinstance(core, ast.Call) and self.fresh(core, scope)):
                return False
        return not self._escapes(fn)

    def unused(self, fn: ast.AST) -> bool:
        """Whether nothing in the file refers to ``fn``: what it returns goes to callers elsewhere."""
        mig = self.mig
        parent = mig.parent(fn)
        if isinstance(parent, ast.ClassDef):
            return not any(attr.attr == fn.name for attr, _ in mig.index.attributes)
        if isinstance(fn, ast.Lambda):
            if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1
                    and isinstance(parent.targets[0], ast.Name)):
                return False
            name = parent.targets[0].id
        else:
            name = fn.name
        return not mig.index.loads.get(name)

    def callers(self, fn: ast.AST) -> list[tuple[ast.Call, Scope]]:
        """The calls of ``fn`` by name (``f(...)``, ``obj.method(...)``) in this file."""
        mig = self.mig
        parent = mig.parent(fn)
        out = []
        if isinstance(parent, ast.ClassDef):
            for attr, scope in mig.index.attributes:
                call = mig.parent(attr)
                if attr.attr == fn.name and isinstance(call, ast.Call) and call.func is attr:
                    out.append((call, scope))
            return out
        if isinstance(fn, ast.Lambda):
            if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1
                    and isinstance(parent.targets[0], ast.Name)):
                return out
            name = parent.targets[0].id
        else:
            name = fn.name
        owner = mig.index.scope_of[id(fn)].parent
        for load, scope in mig.index.loads.get(name, ()):
            call = mig.parent(load)
            found = scope.resolve(name)
            if found is not None and found[0] is owner and isinstance(call, ast.Call) and call.func is load:
                out.append((call, scope))
        return out

    def _escapes(self, fn: ast.AST) -> bool:
        """Whether the file uses ``fn`` other than by calling it by name (passes it, stores it)."""
        mig = self.mig
        index = mig.index
        parent = mig.parent(fn)
        if isinstance(parent, ast.ClassDef):  # a method: every `<obj>.<name>` must be a call
            if fn.name.startswith("__"):
                return True
            for attr, _ in index.attributes:
                if attr.attr == fn.name:
                    call = mig.parent(attr)
                    if not (isinstance(call, ast.Call) and call.func is attr):
                        return True
            return False
        if isinstance(fn, ast.Lambda):
            if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1
                    and isinstance(parent.targets[0], ast.Name)):
                return True
            name = parent.targets[0].id
        else:
            name = fn.name
        owner = index.scope_of[id(fn)].parent
        if len(owner.bindings.get(name, ())) != 1:
            return True  # re-bound: a call may mean something else
        for load, s in index.loads.get(name, ()):
            found = s.resolve(name)
            if found is None or found[0] is not owner:
                continue
            call = mig.parent(load)
            if not (isinstance(call, ast.Call) and call.func is load):
                return True
        return False

    # -- narrowing -------------------------------------------------------------------------------

    def narrowed(self, node: ast.Name, scope: Scope):
        """The type of ``node`` inside ``if isinstance(node, X):`` (its body only)."""
        if node.id not in self._tested_names:
            return None  # no isinstance() test in the file looks at this name
        child: ast.AST = node
        for anc in self.mig.index.ancestors(node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                return None
            if isinstance(anc, ast.If) and child in anc.body:
                t = self._isinstance_test(anc.test, node.id, scope)
                if t is not None:
                    return t
            child = anc
        return None

    def _isinstance_test(self, test: ast.expr, name: str, scope: Scope):
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
            for v in test.values:
                t = self._isinstance_test(v, name, scope)
                if t is not None:
                    return t
            return None
        if not (isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "isinstance"
                and len(test.args) == 2 and isinstance(test.args[0], ast.Name) and test.args[0].id == name):
            return None
        return self.instance_of(test.args[1], scope)

    def instance_of(self, classes: ast.expr, scope: Scope):
        """The type of an instance of the class expression (or tuple of them) ``classes``."""
        items = classes.elts if isinstance(classes, ast.Tuple) else [classes]
        rules: set = set()
        origin: set = set()
        for item in items:
            if self._mindspore_layers and self.mig.qualified(item, scope) in self._mindspore_layers:
                # A MindSpore layer class (a file migrated part way): a module, renamed already.
                if len(items) == 1:
                    return ModuleT(origin=frozenset())
                return None
            ref = self.mig.ref(item)
            if ref is not None:
                rule = self.mig.rules.layers.get(ref.qual)
                if rule is not None and rule.kind == "layer":
                    rules.add(rule)
                    origin.add(id(ref.node))
                    continue
                if ref.qual in self.mig.rules.names and len(items) == 1:
                    return ModuleT(origin=frozenset([id(ref.node)]))
                return None
            local = self.class_of(item, scope)
            if local is None or not local.is_module:
                return None
            if local.norm_rule is None:
                return ModuleT(frozenset(), local, origin=local.origin) if len(items) == 1 else None
            rules.add(local.norm_rule)
            origin |= local.origin
        return ModuleT(frozenset(rules), origin=frozenset(origin)) if rules else None


def _isinstance_tested_names(mig: Migration) -> set[str]:
    """The names ``isinstance(<name>, ...)`` tests, anywhere in the file: only they can be narrowed."""
    names = set()
    for node, _scope in mig.index.loads.get("isinstance", ()):
        call = mig.parent(node)
        if (isinstance(call, ast.Call) and call.func is node and len(call.args) == 2
                and isinstance(call.args[0], ast.Name)):
            names.add(call.args[0].id)
    return names


class _NoneType:
    pass


_NONE = _NoneType()


@dataclass(frozen=True)
class FunctionT:
    node: ast.AST


def rebinds_itself(b: Binding) -> bool:
    """``x = x.to(device)``, ``model = model.eval()``: a name bound to a self-returning method of itself."""
    value = b.value
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in SELF_RETURNING):
        return False
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in SELF_RETURNING:
        value = value.func.value
    return isinstance(value, ast.Name) and value.id == b.name


def _names_partial(func: ast.expr) -> bool:
    """``partial`` or ``<module>.partial``: a cheap test before asking whether it is functools'."""
    return (isinstance(func, ast.Name) and func.id == "partial") or (
        isinstance(func, ast.Attribute) and func.attr == "partial")
def _may_be_tensor(arg: ast.arg, default: ast.expr | None) -> bool:
    """A forward parameter that holds a tensor: no default but None, no annotation but a Tensor."""
    if default is not None and not (isinstance(default, ast.Constant) and default.value is None):
        return False
    return arg.annotation is None or "Tensor" in ast.unparse(arg.annotation)


def _binding_statement(mig: "Migration", b: Binding) -> ast.AST | None:
    """The statement that binds (the function itself for a parameter)."""
    if b.kind == "param":
        return mig.parent(mig.parent(b.node))
    return mig.index.statement_of(b.node) if b.node is not None else None


def _dominates(mig: "Migration", stmt: ast.AST, use: ast.AST) -> bool:
    """Whether ``stmt`` runs, unconditionally, before ``use`` (a statement): it is the function
    ``use`` is in, or it comes earlier in the block that holds ``use`` or one around it."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return True
    block_owner = mig.parent(stmt)
    child = use
    for anc in mig.index.ancestors(use):
        if anc is block_owner:
            for name in ("body", "orelse", "finalbody"):
                block = getattr(anc, name, None)
                if isinstance(block, list) and stmt in block and child in block:
                    return block.index(stmt) < block.index(child)
            return False
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        child = anc
    return False


def _before(a: ast.AST, b: ast.AST) -> bool:
    return (a.lineno, a.col_offset) < (b.lineno, b.col_offset)


def _reaching(mig: "Migration", load: ast.Name, bindings: list[Binding]) -> list[Binding] | None:
    """The bindings of a function's local name that may reach ``load``: the last one that certainly
    runs before it (an assignment earlier in its block, or one around it; a parameter), those between
    that one and the use, and those later in a loop the use is in. None when no binding certainly
    runs first."""
    use = mig.index.statement_of(load)
    placed = []
    for b in bindings:
        stmt = _binding_statement(mig, b)
        if stmt is None:
            return None
        placed.append((b, stmt))
    ancestors = set(map(id, mig.index.ancestors(use)))
    # Bindings made before the use: earlier statements, and statements the use is inside (a for
    # loop's target); not the use's own statement (``x = x.view(...)`` reads x first).
    earlier = [(b, st) for b, st in placed
               if st is not use and (id(st) in ancestors or _before(st, use))]
    killing = [(b, st) for b, st in earlier
               if (b.kind == "param" or (b.kind == "assign" and b.value is not None)) and _dominates(mig, st, use)]
    if not killing:
        return None
    last, last_stmt = max(killing, key=lambda p: (p[1].lineno, p[1].col_offset) if p[0].kind != "param" else (0, 0))
    start = (0, 0) if last.kind == "param" else (last_stmt.lineno, last_stmt.col_offset)
    reaching = [b for b, st in earlier if b is last or (st.lineno, st.col_offset) > start]
    # A loop around the use (inside the function) runs again: its later bindings reach the use too.
    around_last = set(map(id, mig.index.ancestors(last_stmt))) | {id(last_stmt)}
    for loop in ancestors_list(mig, use):
        if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)) and id(loop) not in around_last:
            reaching += [b for b, st in placed
                         if b not in reaching and any(a is loop for a in mig.index.ancestors(st))]
    return reaching


def ancestors_list(mig: "Migration", node: ast.AST) -> list[ast.AST]:
    """The ancestors of ``node`` up to (not beyond) the function it is in."""
    out = []
    for anc in mig.index.ancestors(node):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            break
        out.append(anc)
    return out


def _is_static(fn: ast.AST) -> bool:
    return any(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") for d in fn.decorator_list)


def _is_classmethod(fn: ast.AST) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "classmethod" for d in fn.decorator_list)


def _plain_method(fn: ast.AST) -> bool:
    """A method whose attribute is the function itself (no property or other decorator)."""
    return all(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") for d in fn.decorator_list)


def _argument_for(call: ast.Call, positional: list[ast.arg], arg: ast.arg) -> ast.expr | None:
    """The expression ``call`` passes as parameter ``arg`` (None if it passes none, or hides it
    behind ``*args``/``**kwargs``)."""
    for k in call.keywords:
        if k.arg == arg.arg:
            return k.value
    if arg in positional:
        i = positional.index(arg)
        for a in call.args[: i + 1]:
            if isinstance(a, ast.Starred):
                return None
        return call.args[i] if i < len(call.args) else None
    return None


def _default_of(args: ast.arguments, arg: ast.arg) -> ast.expr | None:
    positional = args.posonlyargs + args.args
    if arg in positional:
        i = positional.index(arg) - (len(positional) - len(args.defaults))
        return args.defaults[i] if i >= 0 else None
    if arg in args.kwonlyargs:
        return args.kw_defaults[args.kwonlyargs.index(arg)]
    return None


def is_partial(mig: "Migration", func: ast.expr, scope: Scope) -> bool:
    """``functools.partial`` however it was imported."""
    if isinstance(func, ast.Attribute) and func.attr == "partial" and isinstance(func.value, ast.Name):
        found = scope.resolve(func.value.id)
        return found is not None and any(b.kind == "import" and b.qual == "functools" for b in found[1])
    if isinstance(func, ast.Name):
        found = scope.resolve(func.id)
        return found is not None and any(b.kind == "import" and b.qual == "functools.partial" for b in found[1])
    return False


# Methods whose iteration yields a module's submodules (torch's, and the Cell's the migration writes:
# a file migrated part way must be read as the whole migration reads it), and those that yield
# (name, submodule) pairs.
MODULE_ITERATORS = ("modules", "children", "cells")
NAMED_MODULE_ITERATORS = ("named_modules", "named_children", "cells_and_names")


def _module_iteration(types: Types, it: ast.expr, scope: Scope, named: bool = False) -> "ModuleT | None":
    """The module iterated by ``for m in model.modules()`` / ``.children()`` / ``.cells()`` (with
    ``named``: the second element of ``for name, m in model.named_modules()`` / ``.cells_and_names()``)."""
    methods = NAMED_MODULE_ITERATORS if named else MODULE_ITERATORS
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr in methods:
        owner = types.of(it.func.value, scope)
        return owner if isinstance(owner, ModuleT) else None
    return None


def _second_of_pair(mig: "Migration", node: ast.AST, target: ast.AST) -> bool:
    """``m`` of ``for name, m in ...``: the second name of a two-name tuple target."""
    return (isinstance(target, ast.Tuple) and len(target.elts) == 2 and target.elts[1] is node
            and mig.parent(node) is target)


MODE_METHODS = ("train", "eval", "set_train")


def strip_self_returning(expr: ast.expr) -> ast.expr | None:
    """The object a chain of self-returning calls starts from (``nn.BatchNorm2d(3).to(dev)`` ->
    ``nn.BatchNorm2d(3)``); None when the chain sets the mode itself (``.eval()``, ``.train()``)."""
    while (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
           and expr.func.attr in SELF_RETURNING):
        if expr.func.attr in MODE_METHODS:
            return None
        expr = expr.func.value
    return expr


def _union(sets) -> frozenset:
    out: frozenset = frozenset()
    for s in sets:
        out |= s
    return out


def origin_of(t) -> frozenset:
    return getattr(t, "origin", frozenset())


def infer_modules(mig: "Migration") -> None:
    mig.types = Types(mig)
