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
    ``cls``: its same-file class; ``container``: Sequential/ModuleList/ModuleDict."""

    rules: frozenset = frozenset()
    cls: "ClassInfo | None" = None
    container: bool = False
    origin: frozenset = field(default=frozenset(), compare=False)

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

    def called(self, types: "Types", call: ast.Call | None):
        return None

    def member(self, types: "Types", attr: str):
        return None

    def attribute(self, types: "Types", attr: str):
        return None


_PENDING = object()  # recursion guard: contributes nothing to a join

# The expressions Types._infer can give a type to (torch references are names and attributes).
_INFERRED = frozenset({ast.Call, ast.Name, ast.Attribute, ast.Subscript, ast.Dict, ast.BoolOp, ast.IfExp,
                       ast.BinOp, ast.UnaryOp, ast.Compare})
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
        self.is_module = False
        self.norm_rule: "LayerRule | None" = None
        self.origin: frozenset = frozenset()  # the torch base-class references, through local bases
        self.methods: dict[str, ast.FunctionDef] = {
            s.name: s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        self.init = self.methods.get("__init__")
        self.init_assigns: dict[str, list[ast.expr]] = {}
        if self.init is not None:
            for stmt in _own_statements(self.init):
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    for t in targets:
                        if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                                and t.value.id == _first_param(self.init)):
                            self.init_assigns.setdefault(t.attr, []).append(stmt.value)

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
        self._tested_names = _isinstance_tested_names(mig)
        # functools.partial can only be called where functools is imported.
        self._functools = any(b.qual in ("functools", "functools.partial") for b in mig.index.imports)
        self.project = mig.project  # what the file's imports from the project are (None: unknown)
        self._tensor_calls: list | None = None
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
            if isinstance(base, ModuleT) and base.cls is not None:
                return self.attribute_of(base.cls, expr.attr)
            if isinstance(base, External):  # `M.Net` of `import models as M`
                return base.member(self, expr.attr)
            return None
        if t is ast.Subscript:
            base = self.of(expr.value, scope)
            if isinstance(base, TensorT):  # an element, a slice or an index of tensors: a tensor
                return TensorT(origin=base.origin)
            if isinstance(base, ModuleT) and base.container:
                return ModuleT(origin=base.origin)
            if isinstance(base, FactoryT):
                return FactoryT(base.rules, False, origin=base.origin)  # a registry lookup: maybe that layer
            return None
        if t is ast.Dict:
            # A registry of layer classes ({"bn": nn.BatchNorm2d, ...}): looking it up may give one.
            return self._registry([self.of(v, scope) for v in expr.values if v is not None])
        if t is ast.BoolOp and isinstance(expr.op, ast.Or):
            parts = [self.of(v, scope) for v in expr.values]
            factories = [p for p in parts if isinstance(p, FactoryT)]
            if factories:
                return FactoryT(_union(f.rules for f in factories), False, origin=_union(f.origin for f in factories))
            return None
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
                return ModuleT(container=name.kind == "container", origin=frozenset([id(ref.node)]))
            return None
        if isinstance(func, ast.Name) and func.id == "dict" and scope.resolve("dict") is None:
            return self._registry([self.of(k.value, scope) for k in call.keywords])
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
            return self._returns_of(callee.node)
        if isinstance(callee, External):  # a function of another file of the project
            return callee.called(self, call)
        if isinstance(callee, ModuleT):
            return TensorT(origin=callee.origin)  # calling a module: its output
        if isinstance(func, (ast.Attribute, ast.Name)) and (mig.qualified(func, scope) or "").startswith("mindspore.ops."):
            return TensorT()  # a file part way through its migration
        return None

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
            results.append(self._binding(b, where))
        return self._join(results)

    def _binding(self, b: Binding, where: Scope):
        if b.kind == "class":
            info = self.classes.get(id(b.node))
            return ClassT(info) if info is not None else None
        if b.kind == "def":
            return FunctionT(b.node)
        if b.kind == "assign" and b.value is not None:
            return self.of(b.value, where)
        if b.kind == "assign":
            return self._unpacked(b, where)
        if b.kind == "for" and b.value is not None:
            it = self.of(b.value, where)
            if isinstance(it, ModuleT) and it.container:
                return ModuleT(origin=it.origin)
            if isinstance(it, TensorT):  # the rows of a tensor, or the tensors of a sequence
                return TensorT(origin=it.origin)
            owner = _module_iteration(self, b.value, where)
            if owner is not None:
                return ModuleT(origin=owner.origin)
            return None
        if b.kind == "param":
            return self._param(b)
        if b.kind == "import" and self.project is not None:
            return self.project.binding(self, b)
        return None

    def _unpacked(self, b: Binding, where: Scope):
        """A name bound by ``a, b = <tensors>`` (a tensor), or by ``x += y`` (what it was: neutral)."""
        parent = self.mig.parent(b.node)
        if isinstance(parent, ast.AugAssign):
            return _PENDING  # contributes nothing to a join: x op= y keeps x's kind
        if isinstance(parent, (ast.Tuple, ast.List)):
            stmt = self.mig.parent(parent)
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
            # The inputs of forward/construct: what the module is called with.
            if fn.name in FORWARD_METHODS and (arg in positional[1:] or arg in args.kwonlyargs) \
                    and not _is_static(fn) and _may_be_tensor(arg, _default_of(args, arg)):
                cls = self.enclosing_class(fn)
                if cls is not None and cls.is_module:
                    return TensorT(origin=cls.origin)
        default = _default_of(args, arg)
        if default is not None:
            t = self.of(default, b.scope.parent or b.scope)
            if isinstance(t, FactoryT):
                return FactoryT(t.rules, False, origin=t.origin)
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
            return None if result is _PENDING else result
        results = [r for r in results if r is not _PENDING]
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
            return ModuleT(rules if all_layers else frozenset(), origin=origin)
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
            if attr in c.methods and not _is_static(c.methods[attr]):  # self._make_layer(...)
                return FunctionT(c.methods[attr])
        return None

    def _returns_of(self, fn: ast.AST):
        key = id(fn)
        if key in self._returns:
            r = self._returns[key]
            return None if r is _PENDING else r
        self._returns[key] = _PENDING
        scope = self.mig.index.scope_of.get(key)
        values = [n.value for n in scope.returns] if scope is not None else []
        result = None
        if scope is not None and values and all(v is not None for v in values):
            result = self._join([self.of(v, scope) for v in values])
            if not isinstance(result, (ModuleT, MaybeLayerT, TensorT)):
                result = None
        self._returns[key] = result
        return result

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


def _may_be_tensor(arg: ast.arg, default: ast.expr | None) -> bool:
    """A forward parameter that holds a tensor: no default but None, no annotation but a Tensor."""
    if default is not None and not (isinstance(default, ast.Constant) and default.value is None):
        return False
    return arg.annotation is None or "Tensor" in ast.unparse(arg.annotation)


def _statement_of(mig: "Migration", node: ast.AST) -> ast.AST:
    while not isinstance(node, ast.stmt):
        node = mig.parent(node)
    return node


def _binding_statement(mig: "Migration", b: Binding) -> ast.AST | None:
    """The statement that binds (the function itself for a parameter)."""
    if b.kind == "param":
        return mig.parent(mig.parent(b.node))
    return _statement_of(mig, b.node) if b.node is not None else None


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
    use = _statement_of(mig, load)
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


def _module_iteration(types: Types, it: ast.expr, scope: Scope) -> "ModuleT | None":
    """The module iterated by ``for m in model.modules()`` / ``.children()``."""
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr in ("modules", "children"):
        owner = types.of(it.func.value, scope)
        return owner if isinstance(owner, ModuleT) else None
    return None


def _union(sets) -> frozenset:
    out: frozenset = frozenset()
    for s in sets:
        out |= s
    return out


def origin_of(t) -> frozenset:
    return getattr(t, "origin", frozenset())


def infer_modules(mig: "Migration") -> None:
    mig.types = Types(mig)
