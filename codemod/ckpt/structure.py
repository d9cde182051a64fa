"""What the model classes of a source are made of, read statically (nothing is executed).

The source is the original PyTorch code or its migration to MindSpore (names.py reads MindSpore's
names as the torch names the rules map to them), or a tree part way through its migration.

A model is a tree: a module class holds children by attribute name, a container (Sequential,
ModuleList, ModuleDict) holds them by index or key, and a layer the rules migrate is a leaf whose
parameters the rules name (and, where MindSpore lays them out otherwise, reshape). Where the source does not show what a child is (built by a helper
function, an import from elsewhere, ``nn.Sequential(*layers)`` filled in a loop), the child is
``Unknown`` and the key planner falls back to reading the checkpoint's own keys there. A child
registered under a name computed at run time (``setattr(self, f"level_{i}", Tree(...))``) is what
the source registers, under any name the expression can produce.

Built on the engine's analysis (name resolution and module inference), so ``nn`` means torch.nn
exactly when the migration thinks so.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from ..facts.inference import SELF_RETURNING, ClassInfo, ModuleT, own_nodes
from ..facts.references import is_mindspore, is_torch
from ..model import MigrationError
from ..ruleset import LayerRule, RuleSet
from ..source import parse_source
from .names import FileAnalysis

# Methods of nn.Module / nn.Cell that register a child or a tensor under a name given as a string.
_REGISTER_CHILD = frozenset({"add_module", "register_module", "insert_child_to_cell", "__setattr__"})
_REGISTER_TENSOR = frozenset({"register_buffer", "register_parameter", "insert_param_to_cell"})
# MindSpore's Cell.insert_child_to_cell does not prefix the names of the child's parameters with
# the member's name (Cell.__setattr__ does): MindSpore 2.10 calls stem.0.gamma '0.gamma'.
UNPREFIXED_CHILD = "insert_child_to_cell"
# Methods of a container that add children after construction.
_GROW = frozenset({"append", "extend", "insert", "add_module", "update"})

_MAX_DEPTH = 30  # a name bound to itself through a chain of assignments


# -- the nodes -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Layer:
    """A layer the rules migrate: its keys are named through ``rule.attributes`` (most keep their
    names; BatchNorm's weight is gamma, Embedding's embedding_table) and reshaped through
    ``rule.layouts``."""

    rule: LayerRule

    @property
    def keeps_keys(self) -> bool:
        return keeps_keys(self.rule)


def keeps_keys(rule: LayerRule) -> bool:
    """The layer's keys carry over as they are, whatever tensors it holds: its rule renames nothing
    and reshapes nothing (MultiheadAttention, ReLU). A rule that renames or reshapes some of its
    layer's tensors names them all in its attribute table."""
    return all(t == a for a, t in rule.attributes.items()) and not rule.inserted_axes


@dataclass(frozen=True, eq=False)
class Leaf:
    """A module or tensor the rules do not know (nn.Parameter, a registered buffer, a torch layer no
    rule converts, ...): its keys carry over."""

    qual: str


@dataclass(frozen=True, eq=False)
class Unknown:
    """The source does not show what this is. ``rules``: the layers it may be, when the source
    narrows it down to several whose MindSpore names or layouts differ."""

    why: str
    rules: tuple[LayerRule, ...] = ()


@dataclass(eq=False)
class Items:
    """A container's children. ``rest``: what every index not in ``named`` holds (a comprehension or
    a loop of ``append``), None when the container is exactly ``named``. ``filled_elsewhere``: built
    empty and filled where the source was not followed. ``grown_late``: filled after it was assigned
    to its owner (``self.blocks.append(...)``), which MindSpore names differently (see keys.py)."""

    named: dict[str, "Node"] = field(default_factory=dict)
    rest: "Node | None" = None
    filled_elsewhere: bool = False
    grown_late: bool = False

    def child(self, name: str) -> "Node | None":
        if name in self.named:
            return self.named[name]
        if self.rest is not None and name.isdigit():
            return self.rest
        return None


@dataclass(frozen=True, eq=False)
class Computed:
    """Members registered under names computed at run time (``setattr(self, 'level_%d' % i, ...)``):
    ``node`` under any name ``pattern`` matches."""

    pattern: re.Pattern
    node: "Node"
    spelled: str  # the name's expression, for the report
    line: int
    unprefixed: bool = False  # registered with insert_child_to_cell (see UNPREFIXED_CHILD)

    @property
    def anonymous(self) -> bool:
        """The name has no literal part (``add_module(name, ...)``): any name fits, so a key that
        does is no sign that it belongs to this class."""
        return not self.pattern.pattern.replace(_ANY, "")


class ModelClass:
    """A module class of the source; its children are read on first use (classes nest each other)."""

    def __init__(self, source: "SourceModel", file: "_File", info: ClassInfo, framework: str):
        self.source = source
        self.file = file
        self.info = info
        self.name = info.name
        self.framework = framework  # "torch" (an nn.Module) | "mindspore" (an nn.Cell: a migrated source)
        self._children: dict[str, Node] | None = None
        self.tensors: set[str] = set()  # registered buffers/parameters: leaves that carry over
        self.computed: list[Computed] = []
        self.unprefixed: set[str] = set()  # members whose parameters MindSpore names without the member's name
        self.open_reason: str | None = None  # why children may exist that the source does not name

    @property
    def where(self) -> str:
        return f"{self.file.display}:{self.info.node.lineno}"

    def children(self) -> dict[str, "Node"]:
        if self._children is None:
            self._children = {}  # a class that (indirectly) contains itself sees no children there
            self._children = _ClassReader(self).read()
        return self._children

    def computed_member(self, name: str) -> tuple["Node", list[Computed]] | None:
        """What a member the source does not name literally is, when names computed at run time
        can produce ``name``; None when none can."""
        self.children()
        matching = [c for c in self.computed if c.pattern.fullmatch(name)]
        if not matching:
            return None
        spelled = ", ".join(dict.fromkeys(c.spelled for c in matching))
        return join([c.node for c in matching], f"registered as {spelled}"), matching

    def __repr__(self) -> str:
        return f"ModelClass({self.name})"


Node = Layer | Leaf | Unknown | Items | ModelClass


def same(a: Node, b: Node) -> bool:
    """Whether two nodes certainly hold the same keys under the same MindSpore names."""
    if isinstance(a, Layer) and isinstance(b, Layer):
        return dict(a.rule.attributes) == dict(b.rule.attributes) and dict(a.rule.layouts) == dict(b.rule.layouts)
    if isinstance(a, ModelClass) and isinstance(b, ModelClass):
        return a is b
    if all(isinstance(n, Leaf) or isinstance(n, Layer) and n.keeps_keys for n in (a, b)):
        return True  # both carry their keys over unchanged
    if isinstance(a, Items) and isinstance(b, Items):
        return (a.named.keys() == b.named.keys() and all(same(a.named[k], b.named[k]) for k in a.named)
                and (a.rest is None) == (b.rest is None) and (a.rest is None or same(a.rest, b.rest)))
    return False


def join(nodes: list[Node], what: str) -> Node:
    """One node for several possible values (assigned on different branches)."""
    if not nodes:
        return Unknown(what)
    first = nodes[0]
    if all(same(first, n) for n in nodes[1:]):
        # A layer that keeps its keys and a module the rules do not know: whatever keys it has carry over.
        return next((n for n in nodes if isinstance(n, Leaf)), first)
    if all(isinstance(n, Items) and n.rest is None for n in nodes):
        # Containers built differently on different paths (ResNet's shortcut: nn.Sequential() or a
        # projection): a key names one member, which holds what any path puts there.
        members: dict[str, list[Node]] = {}
        for n in nodes:
            for name, member in n.named.items():
                members.setdefault(name, []).append(member)
        return Items({name: join(alternatives, f"{what}[{name}]") for name, alternatives in members.items()},
                     None, filled_elsewhere=any(n.filled_elsewhere for n in nodes),
                     grown_late=any(n.grown_late for n in nodes))
    if all(isinstance(n, Layer) for n in nodes):
        rules = tuple(sorted({n.rule for n in nodes}, key=lambda r: r.torch))
        return Unknown(f"{what}: may be " + " or ".join(r.torch_name for r in rules), rules)
    return Unknown(f"{what}: built differently on different paths")


# -- the source ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Growth:
    """One way a container attribute grows after it is built: ``self.blocks.append(x)`` & co."""

    how: str  # append | extend | insert | add_module | update | setitem
    key: ast.expr | None
    value: ast.expr | None
    conditional: bool


@dataclass
class _File:
    display: str
    text: str
    analysis: FileAnalysis


class SourceModel:
    """The module classes of one file or a directory of files."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.files: list[_File] = []
        self.classes: list[ModelClass] = []
        self.skipped: list[str] = []  # files that could not be analysed, with why

    @classmethod
    def read(cls, path: Path, rules: RuleSet) -> "SourceModel":
        """The file ``path``, or every ``*.py`` under the directory ``path`` (hidden ones skipped)."""
        from ..runner.files import decode

        model = cls(rules)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.py")
                           if not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            files = [path]
        for file in files:
            display = str(file)
            try:
                text = decode(file.read_bytes()).text
            except (OSError, ValueError) as exc:
                model.skipped.append(f"{display}: {getattr(exc, 'strerror', None) or exc}")
                continue
            model.add(text, display)
        return model

    def add(self, text: str, display: str) -> None:
        text = text.lstrip("\ufeff")
        try:
            tree = parse_source(text, display)
        except MigrationError as exc:
            self.skipped.append(str(exc))
            return
        analysis = FileAnalysis(tree, self.rules)
        file = _File(display, text, analysis)
        self.files.append(file)
        for info in analysis.types.classes.values():
            if info.is_module and info.origin and info.norm_rule is None:  # an nn.Module (or nn.Cell) subclass
                framework = "mindspore" if info.origin & analysis.mindspore_nodes else "torch"
                self.classes.append(ModelClass(self, file, info, framework))

    # -- queries ---------------------------------------------------------------------------------

    def named(self, name: str) -> list[ModelClass]:
        return [c for c in self.classes if c.name == name]

    def class_for(self, info: ClassInfo) -> "ModelClass | None":
        for c in self.classes:
            if c.info is info:
                return c
        return None

    def used_as_child(self) -> set[int]:
        """id() of the classes some other class holds (directly or in a container)."""
        used: set[int] = set()

        def visit(node: Node) -> None:
            if isinstance(node, ModelClass):
                used.add(id(node))
            elif isinstance(node, Items):
                for child in node.named.values():
                    visit(child)
                if node.rest is not None:
                    visit(node.rest)

        for c in self.classes:
            for child in c.children().values():
                visit(child)
        return used


# -- reading a class -------------------------------------------------------------------------------


class _ClassReader:
    """The children of one module class: ``self.<name> = ...`` in any of its methods (and its
    same-file bases'), ``add_module``/``register_*``/``setattr``/``__setattr__`` (and MindSpore's
    ``insert_*_to_cell``), ``super().__init__(...)`` of a container subclass, and what is added to
    containers afterwards."""

    def __init__(self, cls: ModelClass):
        self.cls = cls
        self.source = cls.source
        self.analysis = cls.file.analysis
        self.rules = cls.source.rules

    def read(self) -> dict[str, Node]:
        values: dict[str, list[Node]] = {}
        growths: dict[str, list[_Growth]] = {}
        items_call: ast.Call | None = None
        for info in self.cls.info.mro():
            for base in info.node.bases:
                ref = self.analysis.ref(base)
                if ref is not None and ref.qual in self.rules.names:
                    if self.rules.names[ref.qual].kind == "container" and items_call is None:
                        items_call = self._super_init_call(info)
                        if items_call is None:
                            self._open(f"the items of {info.name} (a {ref.qual} subclass) are not visible")
                elif ref is not None or self.analysis.types.class_of(base, info.scope) is None:
                    self._open(f"{info.name} derives from {_short(base)}, whose members the source does not show")
            for fn in info.methods.values():
                self._read_method(fn, values, growths)
        children = {name: join(nodes, f"self.{name}") for name, nodes in values.items()}
        for name, grown in growths.items():
            if isinstance(children.get(name), Items):
                children[name] = self._grown(children[name], grown)
        if items_call is not None:
            items = self._container(items_call, self._scope_of(items_call))
            if isinstance(items, Items) and items.rest is None:
                children.update(items.named)
            else:
                self._open(f"the items of {self.cls.name} are not visible")
        return children

    def _open(self, why: str) -> None:
        self.cls.open_reason = self.cls.open_reason or why

    def _scope_of(self, node: ast.AST):
        p = node
        while not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
            p = self.analysis.parent(p)
        return self.analysis.index.scope_of[id(p)]

    def _read_method(self, fn, values: dict, growths: dict) -> None:
        args = fn.args.posonlyargs + fn.args.args
        if not args or any(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod")
                           for d in fn.decorator_list):
            return
        me = args[0].arg
        scope = self.analysis.index.scope_of[id(fn)]

        def is_me(e: ast.expr) -> bool:
            return isinstance(e, ast.Name) and e.id == me

        def member_of_me(e: ast.expr) -> str | None:  # self.<name>
            return e.attr if isinstance(e, ast.Attribute) and is_me(e.value) else None

        for node in own_nodes(fn):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if member_of_me(target):
                        values.setdefault(target.attr, []).append(self.describe(node.value, scope))
                    elif isinstance(target, ast.Subscript) and member_of_me(target.value):
                        growths.setdefault(target.value.attr, []).append(
                            _Growth("setitem", target.slice, node.value, _conditional(self.analysis, node, fn)))
            elif isinstance(node, ast.AugAssign) and member_of_me(node.target):
                growths.setdefault(node.target.attr, []).append(_Growth(
                    "extend", None, node.value, _conditional(self.analysis, node, fn)))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                func = node.func
                if (is_me(func.value) or _is_super(func.value)) and func.attr in _REGISTER_CHILD | _REGISTER_TENSOR:
                    self._register(func.attr, node.args, node, scope, values)
                elif member_of_me(func.value) and func.attr in _GROW:
                    growths.setdefault(func.value.attr, []).append(_Growth(
                        func.attr, node.args[0] if len(node.args) == 2 else None,
                        node.args[-1] if node.args and not node.keywords else None,
                        _conditional(self.analysis, node, fn)))
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                    and node.args and is_me(node.args[0])):
                self._register("setattr", node.args[1:], node, scope, values)

    def _register(self, how: str, args: list[ast.expr], call: ast.Call, scope, values: dict) -> None:
        """``self.add_module(name, child)``, ``setattr(self, name, child)`` & co.: a member under a
        literal name, or under the names a computed one can produce."""
        if not args or isinstance(args[0], ast.Starred):
            self._open(f"{self.cls.name} registers members with {how}() in a way the source does not show")
            return
        value = args[1] if len(args) > 1 else next(
            (k.value for k in call.keywords if k.arg in ("module", "child_cell", "value")), None)
        tensor = how in _REGISTER_TENSOR
        if tensor:
            node: Node = Leaf("tensor")
        elif value is not None:
            node = self.describe(value, scope)
        else:
            node = Unknown(f"{how}() without a value")
        name = _literal_str(args[0])
        if name is not None:
            if tensor:
                self.cls.tensors.add(name)
            elif value is not None:
                values.setdefault(name, []).append(node)
            if how == UNPREFIXED_CHILD:
                self.cls.unprefixed.add(name)
        else:
            pattern = re.compile(_name_pattern(self.analysis, args[0], scope), re.DOTALL)
            self.cls.computed.append(Computed(pattern, node, _short(args[0]), call.lineno, how == UNPREFIXED_CHILD))

    def _super_init_call(self, info: ClassInfo) -> ast.Call | None:
        if info.init is None:
            return None
        for node in own_nodes(info.init):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
                    and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
                    and node.func.value.func.id == "super"):
                return node
        return None

    def _grown(self, items: Items, growths: list["_Growth"]) -> Node:
        """A container after ``append``/``extend``/``+=``/``[key] =``: exact when every growth runs
        once, in order; one node for every index when they repeat and agree; else unknown."""
        named = dict(items.named)
        added: list[Node] = []
        repeated = items.rest is not None
        for g in growths:
            scope = self._scope_of(g.value) if g.value is not None else None
            if g.how == "append" and g.value is not None and g.key is None:
                added.append(self.describe(g.value, scope))
            elif g.how == "extend" and isinstance(g.value, (ast.List, ast.Tuple)):
                added.extend(self.describe(e, scope) for e in g.value.elts)
            elif g.how == "extend" and isinstance(g.value, (ast.ListComp, ast.GeneratorExp)):
                added.append(self.describe(g.value.elt, self.analysis.index.scope_of.get(id(g.value), scope)))
                repeated = True
            elif g.how in ("setitem", "add_module") and g.key is not None and _literal_str(g.key) is not None:
                if g.conditional or repeated:
                    return Unknown(f"items added under {ast.unparse(g.key)} conditionally")
                named[_literal_str(g.key)] = self.describe(g.value, scope)
                continue
            else:
                return Unknown(f"items added with {g.how}(): not followed")
            repeated = repeated or g.conditional
        if not repeated:
            for node in added:
                named[str(len(named))] = node
            return Items(named, None, grown_late=True)
        every = [*named.values(), *([items.rest] if items.rest is not None else []), *added]
        node = join(every, "items added in a loop")
        return node if isinstance(node, Unknown) else Items({}, node, grown_late=True)

    # -- expressions -----------------------------------------------------------------------------

    def describe(self, expr: ast.expr, scope, depth: int = 0) -> Node:
        if depth > _MAX_DEPTH:
            return Unknown(_short(expr))
        mig = self.analysis
        if isinstance(expr, ast.Call):
            func = expr.func
            ref = mig.ref(func)
            if ref is not None:
                rule = self.rules.layers.get(ref.qual)
                if rule is not None and rule.kind == "layer":
                    return Layer(rule)
                name = self.rules.names.get(ref.qual)
                if name is not None and name.kind == "container":
                    return self._container(expr, scope, depth)
                if ref.qual in self.rules.layers:  # a layer function (batch_norm): no keys of its own
                    return Unknown(_short(expr))
                candidates = self.analysis.candidates(ref.qual)
                if candidates:  # a MindSpore layer the rules map several torch layers to
                    return join([Layer(r) for r in candidates], _short(expr))
                if is_torch(ref.qual) or is_mindspore(ref.qual):
                    return Leaf(ref.qual)
            if isinstance(func, ast.Attribute) and func.attr in SELF_RETURNING:
                return self.describe(func.value, scope, depth + 1)
        t = mig.types.of(expr, scope)
        if isinstance(t, ModuleT):
            if t.rules:
                return join([Layer(r) for r in t.rules], _short(expr))
            if t.cls is not None:
                found = self.source.class_for(t.cls)
                if found is not None:
                    return found
        if isinstance(expr, ast.Name):
            binding = _only_binding(scope, expr.id)
            if binding is not None and binding.kind == "assign" and binding.value is not None:
                return self.describe(binding.value, binding.scope, depth + 1)
        if isinstance(expr, ast.Call):
            imported = self._imported_class(expr.func, scope)
            if imported is not None:
                return imported
        return Unknown(_short(expr))

    def _imported_class(self, func: ast.expr, scope) -> ModelClass | None:
        """``Block(...)`` where Block is imported from another file of the source: found by name
        when exactly one analysed class has it."""
        binding = _only_binding(scope, func.id) if isinstance(func, ast.Name) else None
        if binding is None or binding.kind != "import" or is_torch(binding.qual) or is_mindspore(binding.qual):
            return None
        candidates = self.source.named(binding.node.name.rsplit(".", 1)[-1])
        others = [c for c in candidates if c.file is not self.cls.file]
        return others[0] if len(others) == 1 else None

    def _container(self, call: ast.Call, scope, depth: int = 0) -> Node:
        """Sequential(a, b) / Sequential(OrderedDict(...)) / ModuleList([...]) / ModuleDict({...})."""
        if call.keywords:
            return Unknown(_short(call))
        args = call.args
        if not args:
            return Items(filled_elsewhere=True)
        if len(args) == 1 and not isinstance(args[0], ast.Starred):
            only = args[0]
            if isinstance(only, (ast.List, ast.Tuple)):
                return self._positional(only.elts, scope, depth)
            if isinstance(only, (ast.ListComp, ast.GeneratorExp)):
                return self._positional([ast.Starred(only)], scope, depth)
            if isinstance(only, ast.Dict):
                return self._named(list(zip(only.keys, only.values)), scope, depth)
            if (isinstance(only, ast.Call) and isinstance(only.func, (ast.Name, ast.Attribute))
                    and (only.func.id if isinstance(only.func, ast.Name) else only.func.attr) == "OrderedDict"):
                pairs = only.args[0] if len(only.args) == 1 and not only.keywords else None
                if isinstance(pairs, (ast.List, ast.Tuple)) and all(
                        isinstance(p, ast.Tuple) and len(p.elts) == 2 for p in pairs.elts):
                    return self._named([(p.elts[0], p.elts[1]) for p in pairs.elts], scope, depth)
                if not only.args and only.keywords:
                    return self._named([(ast.Constant(k.arg), k.value) for k in only.keywords], scope, depth)
                return Unknown(_short(call))
        return self._positional(args, scope, depth)

    def _positional(self, elts: list[ast.expr], scope, depth: int) -> Node:
        named: dict[str, Node] = {}
        for i, elt in enumerate(elts):
            if isinstance(elt, ast.Starred):
                inner = elt.value
                if isinstance(inner, (ast.List, ast.Tuple)):
                    expanded = self._positional(inner.elts, scope, depth)
                    if not isinstance(expanded, Items):
                        return expanded
                    for node in expanded.named.values():
                        named[str(len(named))] = node
                    continue
                if isinstance(inner, (ast.ListComp, ast.GeneratorExp)) and i == len(elts) - 1:
                    inner_scope = self.analysis.index.scope_of.get(id(inner), scope)
                    node = self.describe(inner.elt, inner_scope, depth + 1)
                    if named and not all(same(node, n) for n in named.values()):
                        return Unknown(_short(inner))
                    return Items({}, node)
                return Unknown(f"*{_short(inner)}")
            named[str(len(named))] = self.describe(elt, scope, depth + 1)
        return Items(named, None)

    def _named(self, pairs, scope, depth: int) -> Node:
        named: dict[str, Node] = {}
        for key, value in pairs:
            name = _literal_str(key) if key is not None else None
            if name is None:
                return Unknown("a container with computed keys")
            named[name] = self.describe(value, scope, depth + 1)
        return Items(named, None)


def _is_super(e: ast.expr) -> bool:
    """``super()`` (its methods act on ``self``)."""
    return isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == "super" and not e.args


def _only_binding(scope, name: str):
    """The one binding ``name`` has where ``scope`` sees it; None if unbound or bound several times."""
    bound = scope.resolve(name)
    if bound is None or len(bound[1]) != 1:
        return None
    return bound[1][0]


def _literal_str(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _conditional(analysis: FileAnalysis, node: ast.AST, fn: ast.AST) -> bool:
    """Whether ``node`` may run other than exactly once per call of ``fn`` (loops, branches)."""
    p = analysis.parent(node)
    while p is not None and p is not fn:
        if isinstance(p, (ast.For, ast.AsyncFor, ast.While, ast.If, ast.Try, ast.With, ast.comprehension,
                          ast.ListComp, ast.GeneratorExp)):
            return True
        p = analysis.parent(p)
    return False


# A conversion specifier of printf-style formatting ('level_%d' % i), and the %% escape.
_PRINTF = re.compile(r"%%|%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[a-zA-Z]")
_ANY = ".*"


def _name_pattern(analysis: FileAnalysis, expr: ast.expr, scope, depth: int = 0) -> str:
    """A regular expression for the strings ``expr`` can evaluate to: its literal parts, and
    anything where it computes (f-strings, % and str.format, +, a name bound once)."""
    if depth > _MAX_DEPTH:
        return _ANY
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return re.escape(expr.value)
    if isinstance(expr, ast.JoinedStr):
        return "".join([re.escape(v.value) if isinstance(v, ast.Constant) else _ANY for v in expr.values])
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return "".join([_name_pattern(analysis, expr.left, scope, depth + 1),
                        _name_pattern(analysis, expr.right, scope, depth + 1)])
    if (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod) and isinstance(expr.left, ast.Constant)
            and isinstance(expr.left.value, str)):
        parts, last = [], 0
        for m in _PRINTF.finditer(expr.left.value):
            parts += [re.escape(expr.left.value[last:m.start()]), re.escape("%") if m.group() == "%%" else _ANY]
            last = m.end()
        return "".join([*parts, re.escape(expr.left.value[last:])])
    if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format"
            and isinstance(expr.func.value, ast.Constant) and isinstance(expr.func.value.value, str)):
        try:
            fields = list(string.Formatter().parse(expr.func.value.value))
        except ValueError:
            return _ANY
        return "".join([p for text, name, _, _ in fields for p in (re.escape(text), _ANY if name is not None else "")])
    if isinstance(expr, ast.Name):
        binding = _only_binding(scope, expr.id)
        if binding is not None and binding.kind == "assign" and binding.value is not None:
            return _name_pattern(analysis, binding.value, binding.scope, depth + 1)
    return _ANY


def _short(node: ast.expr, limit: int = 60) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
