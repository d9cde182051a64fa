"""Scopes on Python's ``ast``.

One recursive walk sets parent links, builds scopes with their bindings and records the loads of
every name. Resolution then follows Python's scoping rules (function scopes see enclosing
functions and the module, never class bodies; ``global`` declarations), so a local class named
``nn``, a parameter ``nn`` or ``from mindspore import nn`` are never mistaken for torch.

LibCST's ScopeProvider would give the same answers, but building LibCST trees (and their scope
metadata) for every file costs many times this walk; LibCST parses only the files that change, to
rewrite them (codemod/transform/).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from typing import Iterable, Iterator

# Fields that hold operators and contexts, never names: not walked.
_NOT_CHILDREN = frozenset({"ctx", "op", "ops"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}

# The types the walk tests every node against, as module globals (no attribute lookup on `ast`).
_Name, _Attribute, _Constant, _Load = ast.Name, ast.Attribute, ast.Constant, ast.Load

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


class Binding:
    __slots__ = ("name", "kind", "node", "scope", "qual", "stmt", "value", "style")

    def __init__(self, name, kind, node, scope, qual=None, stmt=None, value=None, style=None):
        self.name = name
        self.kind = kind  # import | assign | param | def | class | for | with | except | other
        self.node = node
        self.scope = scope
        self.qual = qual  # imports: the dotted name bound (e.g. "torch.nn")
        self.stmt = stmt  # imports: the Import/ImportFrom statement; assignments: the statement
        self.value = value  # simple assignments: the assigned expression; for loops: the iterable
        self.style = style  # imports: "import" | "from"

    def __repr__(self) -> str:
        return f"Binding({self.name!r}, {self.kind}, qual={self.qual!r})"


class Scope:
    __slots__ = ("kind", "node", "parent", "bindings", "globals", "star_imports", "returns")

    def __init__(self, kind: str, node: ast.AST, parent: "Scope | None"):
        self.kind = kind  # module | class | function | comprehension
        self.node = node
        self.parent = parent
        self.bindings: dict[str, list[Binding]] = {}
        self.globals: set[str] = set()
        self.star_imports: list[tuple[str, ast.ImportFrom]] = []  # (module, statement)
        self.returns: list[ast.Return] = []  # function scopes: their return statements

    def bind(self, b: Binding) -> None:
        bindings = self.bindings.get(b.name)
        if bindings is None:
            self.bindings[b.name] = [b]
        else:
            bindings.append(b)

    def module(self) -> "Scope":
        s = self
        while s.parent is not None:
            s = s.parent
        return s

    def resolve(self, name: str) -> "tuple[Scope, list[Binding]] | None":
        """The scope that binds ``name`` as seen from here, and its bindings there."""
        if name in self.globals:
            mod = self.module()
            return (mod, mod.bindings[name]) if name in mod.bindings else None
        if name in self.bindings:
            return self, self.bindings[name]
        s = self.parent
        while s is not None:
            if s.kind != "class" and name in s.bindings:
                return s, s.bindings[name]
            s = s.parent
        return None

    def __repr__(self) -> str:
        name = getattr(self.node, "name", "")
        return f"Scope({self.kind} {name})"


class Index:
    """Everything the rewrite needs to know about one module, from a single walk."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.module_scope = Scope("module", tree, None)
        self.loads: dict[str, list[tuple[ast.Name, Scope]]] = defaultdict(list)
        self.attributes: list[tuple[ast.Attribute, Scope]] = []
        self.attribute_assignments: list[tuple[ast.Assign, Scope]] = []  # `a.b = value` (one target)
        self.norm_strings: list[ast.Constant] = []  # string literals naming torch norm parameters
        self.imports: list[Binding] = []
        self.classes: list[tuple[ast.ClassDef, Scope]] = []
        self.functions: list[tuple[ast.AST, Scope]] = []
        self.calls: list[tuple[ast.Call, Scope]] = []  # every call, in walk order
        self.scope_of: dict[int, Scope] = {}  # id(scope node) -> the scope it opens
        self.names: set[str] = set()  # every identifier bound or loaded anywhere
        # Parent links live here, not on the nodes: a tree with links both ways is cyclic garbage the
        # collector must trace, one without is freed as soon as the migration is done with it.
        self.parents: dict[ast.AST, ast.AST] = {}  # nodes hash by identity
        self._walk_body(tree.body, tree, self.module_scope)

    # -- the walk ------------------------------------------------------------------------------
    # Most nodes are names, constants, attributes and calls. _visit records names and constants
    # first thing and follows an attribute chain in a loop; calls (with their keywords) and the other
    # common compound nodes have handlers that know their fields. The generic walk over ``_fields``
    # (a getattr per field, a visit per keyword) is left to rare node types: it was most of the cost.

    def _visit(self, node: ast.AST, parent: ast.AST, scope: Scope) -> None:
        parents = self.parents
        t = node.__class__
        while t is _Attribute:  # a.b.c: each attribute of the chain, then the name it starts from
            parents[node] = parent
            self.attributes.append((node, scope))
            parent, node = node, node.value
            t = node.__class__
        parents[node] = parent
        if t is _Name:
            if node.ctx.__class__ is _Load:
                self.loads[node.id].append((node, scope))
            else:
                self._bind_name(node, scope)
            return
        if t is _Constant:
            value = node.value
            if value.__class__ is str and ("running_" in value or "num_batches" in value):
                self.norm_strings.append(node)
            return
        handler = _HANDLERS.get(t)
        if handler is not None:
            handler(self, node, scope)
        else:
            self._children(node, scope)

    def _children(self, node: ast.AST, scope: Scope) -> None:
        visit = self._visit
        fields = _CHILD_FIELDS.get(node.__class__)
        if fields is None:
            fields = _CHILD_FIELDS[node.__class__] = tuple(f for f in node._fields if f not in _NOT_CHILDREN)
        for name in fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for child in value:
                    if isinstance(child, ast.AST):
                        visit(child, node, scope)
            elif isinstance(value, ast.AST):
                visit(value, node, scope)

    def _bind_name(self, node: ast.Name, scope: Scope, stmt: ast.stmt | None = None,
                   value: ast.expr | None = None) -> None:
        """A name stored or deleted: an assignment binding in its scope (or the module's, if global)."""
        name = node.id
        target = scope.module() if name in scope.globals else scope
        b = Binding(name, "assign", node, target)
        if stmt is not None:  # set here: a Binding built with keyword arguments takes twice as long
            b.stmt, b.value = stmt, value
        target.bind(b)
        self.names.add(name)

    def _walk_body(self, body: Iterable[ast.AST], parent: ast.AST, scope: Scope) -> None:
        for stmt in body:
            self._visit(stmt, parent, scope)

    def _new_scope(self, kind: str, node: ast.AST, parent: Scope) -> Scope:
        s = Scope(kind, node, parent)
        self.scope_of[id(node)] = s
        return s

    # -- parents --------------------------------------------------------------------------------

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.parents.get(node)

    def statement_of(self, node: ast.AST) -> ast.stmt | None:
        """The statement ``node`` is in (itself, if it is one)."""
        while node is not None and not isinstance(node, ast.stmt):
            node = self.parents.get(node)
        return node

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        p = self.parents.get(node)
        while p is not None:
            yield p
            p = self.parents.get(p)

    # handlers ---------------------------------------------------------------------------------

    def _import(self, node: ast.Import, scope: Scope) -> None:
        for alias in node.names:
            self.parents[alias] = node
            if alias.asname:
                b = Binding(alias.asname, "import", alias, scope, qual=alias.name, stmt=node, style="import")
            else:
                first = alias.name.split(".", 1)[0]
                b = Binding(first, "import", alias, scope, qual=first, stmt=node, style="import")
            scope.bind(b)
            self.imports.append(b)
            self.names.add(b.name)

    def _import_from(self, node: ast.ImportFrom, scope: Scope) -> None:
        module = node.module if not node.level else None
        for alias in node.names:
            self.parents[alias] = node
            if alias.name == "*":
                if module:
                    scope.star_imports.append((module, node))
                continue
            name = alias.asname or alias.name
            qual = f"{module}.{alias.name}" if module else None
            b = Binding(name, "import", alias, scope, qual=qual, stmt=node, style="from")
            scope.bind(b)
            self.imports.append(b)
            self.names.add(name)

    def _function(self, node: ast.FunctionDef, scope: Scope) -> None:
        scope.bind(Binding(node.name, "def", node, scope, stmt=node))
        self.names.add(node.name)
        for d in node.decorator_list:
            self._visit(d, node, scope)
        self._arguments_outside(node.args, node, scope)
        if node.returns is not None:
            self._visit(node.returns, node, scope)
        inner = self._new_scope("function", node, scope)
        self._bind_arguments(node.args, inner)
        self.functions.append((node, scope))
        self._walk_body(node.body, node, inner)

    def _lambda(self, node: ast.Lambda, scope: Scope) -> None:
        self._arguments_outside(node.args, node, scope)
        inner = self._new_scope("function", node, scope)
        self._bind_arguments(node.args, inner)
        self._visit(node.body, node, inner)

    def _arguments_outside(self, args: ast.arguments, owner: ast.AST, scope: Scope) -> None:
        self.parents[args] = owner
        for d in args.defaults:
            self._visit(d, args, scope)
        for d in args.kw_defaults:
            if d is not None:
                self._visit(d, args, scope)
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if a is not None:
                self.parents[a] = args
                if a.annotation is not None:
                    self._visit(a.annotation, a, scope)

    def _bind_arguments(self, args: ast.arguments, inner: Scope) -> None:
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if a is not None:
                inner.bind(Binding(a.arg, "param", a, inner))
                self.names.add(a.arg)

    def _class(self, node: ast.ClassDef, scope: Scope) -> None:
        scope.bind(Binding(node.name, "class", node, scope, stmt=node))
        self.names.add(node.name)
        for d in node.decorator_list:
            self._visit(d, node, scope)
        for b in node.bases:
            self._visit(b, node, scope)
        for k in node.keywords:
            self.parents[k] = node
            self._visit(k.value, k, scope)
        inner = self._new_scope("class", node, scope)
        self.classes.append((node, scope))
        self._walk_body(node.body, node, inner)

    def _comprehension(self, node: ast.AST, scope: Scope) -> None:
        gens = node.generators
        # The first iterable is evaluated in the enclosing scope.
        self.parents[gens[0]] = node
        self._visit(gens[0].iter, gens[0], scope)
        inner = self._new_scope("comprehension", node, scope)
        for i, g in enumerate(gens):
            self.parents[g] = node
            if i:
                self._visit(g.iter, g, inner)
            self._visit(g.target, g, inner)
            for cond in g.ifs:
                self._visit(cond, g, inner)
        if isinstance(node, ast.DictComp):
            self._visit(node.key, node, inner)
            self._visit(node.value, node, inner)
        else:
            self._visit(node.elt, node, inner)

    def _call(self, node: ast.Call, scope: Scope) -> None:
        self.calls.append((node, scope))
        visit = self._visit
        visit(node.func, node, scope)
        for arg in node.args:
            visit(arg, node, scope)
        parents = self.parents
        for keyword in node.keywords:
            parents[keyword] = node
            visit(keyword.value, keyword, scope)

    def _subscript(self, node: ast.Subscript, scope: Scope) -> None:
        self._visit(node.value, node, scope)
        self._visit(node.slice, node, scope)

    def _sequence(self, node: ast.Tuple | ast.List, scope: Scope) -> None:
        visit = self._visit
        for element in node.elts:
            visit(element, node, scope)

    def _expr(self, node: ast.Expr, scope: Scope) -> None:
        self._visit(node.value, node, scope)

    def _if(self, node: ast.If, scope: Scope) -> None:
        self._visit(node.test, node, scope)
        self._walk_body(node.body, node, scope)
        self._walk_body(node.orelse, node, scope)

    def _return(self, node: ast.Return, scope: Scope) -> None:
        scope.returns.append(node)
        if node.value is not None:
            self._visit(node.value, node, scope)

    def _global(self, node: ast.Global, scope: Scope) -> None:
        scope.globals.update(node.names)

    def _assign(self, node: ast.Assign, scope: Scope) -> None:
        self._visit(node.value, node, scope)
        targets = node.targets
        if len(targets) == 1 and targets[0].__class__ is _Name:
            # Keep the assigned value with the binding, for module inference.
            self.parents[targets[0]] = node
            self._bind_name(targets[0], scope, node, node.value)
            return
        if len(targets) == 1 and targets[0].__class__ is _Attribute:
            self.attribute_assignments.append((node, scope))
        for target in targets:
            self._visit(target, node, scope)

    def _ann_assign(self, node: ast.AnnAssign, scope: Scope) -> None:
        self._visit(node.annotation, node, scope)
        target, value = node.target, node.value
        if value is not None:
            self._visit(value, node, scope)
        if value is not None and target.__class__ is _Name:
            self.parents[target] = node
            self._bind_name(target, scope, node, value)
        else:
            self._visit(target, node, scope)

    def _for(self, node: ast.For, scope: Scope) -> None:
        self._visit(node.iter, node, scope)
        self._visit(node.target, node, scope)
        if type(node.target) is ast.Name:
            b = _last_binding(scope, node.target.id)
            b.kind, b.stmt, b.value = "for", node, node.iter
        self._walk_body(node.body, node, scope)
        self._walk_body(node.orelse, node, scope)

    def _except(self, node: ast.ExceptHandler, scope: Scope) -> None:
        if node.name:
            scope.bind(Binding(node.name, "except", node, scope))
        self._children(node, scope)

    def _match_name(self, node: ast.AST, scope: Scope) -> None:
        name = getattr(node, "name", None) or getattr(node, "rest", None)
        if name:
            scope.bind(Binding(name, "other", node, scope))
        self._children(node, scope)

    # -- queries -------------------------------------------------------------------------------


def _last_binding(scope: Scope, name: str) -> Binding:
    target = scope.module() if name in scope.globals else scope
    return target.bindings[name][-1]


_HANDLERS = {
    ast.Import: Index._import,
    ast.ImportFrom: Index._import_from,
    ast.FunctionDef: Index._function,
    ast.AsyncFunctionDef: Index._function,
    ast.Lambda: Index._lambda,
    ast.ClassDef: Index._class,
    ast.ListComp: Index._comprehension,
    ast.SetComp: Index._comprehension,
    ast.GeneratorExp: Index._comprehension,
    ast.DictComp: Index._comprehension,
    ast.Global: Index._global,
    ast.Call: Index._call,
    ast.Subscript: Index._subscript,
    ast.Tuple: Index._sequence,
    ast.List: Index._sequence,
    ast.Expr: Index._expr,
    ast.If: Index._if,
    ast.Return: Index._return,
    ast.Nonlocal: Index._global,
    ast.Assign: Index._assign,
    ast.AnnAssign: Index._ann_assign,
    ast.For: Index._for,
    ast.AsyncFor: Index._for,
    ast.ExceptHandler: Index._except,
}
for _name in ("MatchAs", "MatchStar", "MatchMapping"):
    if hasattr(ast, _name):
        _HANDLERS[getattr(ast, _name)] = Index._match_name


# ---------------------------------------------------------------------------------------------


def dotted_chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None for anything that is not a plain dotted name."""
    parts = []
    while type(node) is ast.Attribute:
        parts.append(node.attr)
        node = node.value
    if type(node) is not ast.Name:
        return None
    parts.append(node.id)
    parts.reverse()
    return parts
