"""``NodeKey``s of ``ast`` nodes: statements numbered in source order, and each call, attribute and
name ranked among its statement's own nodes of that kind (see plan.py). The LibCST side
(transform/locate.py) counts the same way, so a key names the same node in both trees."""

from __future__ import annotations

import ast

from ..plan import Kind, NodeKey

_COUNTED = {ast.Call: Kind.CALL, ast.Attribute: Kind.ATTRIBUTE, ast.Name: Kind.NAME}
KINDS = (Kind.CALL, Kind.ATTRIBUTE, Kind.NAME)
_INDEX = {kind: i for i, kind in enumerate(KINDS)}
_FIELDS: dict[type, tuple[str, ...]] = {}


def _children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of ``node`` that are not statements (nested statements have their own ranks)."""
    fields = _FIELDS.get(node.__class__)
    if fields is None:
        fields = _FIELDS[node.__class__] = tuple(f for f in node._fields if f not in ("ctx", "op", "ops"))
    out = []
    for name in fields:
        value = getattr(node, name, None)
        if value.__class__ is list:
            out += [v for v in value if isinstance(v, ast.AST) and not isinstance(v, ast.stmt)]
        elif isinstance(value, ast.AST) and not isinstance(value, ast.stmt):
            out.append(value)
    return out


def _nested_blocks(stmt: ast.stmt):
    """The statement lists inside a compound statement, in source order."""
    t = type(stmt)
    if t in (ast.Try, getattr(ast, "TryStar", ast.Try)):
        yield stmt.body
        for handler in stmt.handlers:
            yield handler.body
        yield stmt.orelse
        yield stmt.finalbody
    elif t is ast.Match:
        for case in stmt.cases:
            yield case.body
    else:
        for name in ("body", "orelse"):
            block = getattr(stmt, name, None)
            if block:
                yield block


def _span(node: ast.AST) -> tuple[int, int, int, int]:
    # Outer nodes first where two start together (``f(x)(y)``: the outer call, then ``f(x)``).
    return (node.lineno, node.col_offset, -node.end_lineno, -node.end_col_offset)


class NodeKeys:
    """Keys for the nodes of one module. Statement numbers are assigned once; a statement's own
    nodes are ranked the first time one of them is asked for."""

    def __init__(self, tree: ast.Module, parents: dict):
        self.parents = parents
        self.number: dict[int, int] = {}  # id(statement) -> its number
        self.statements: list[ast.stmt] = []
        self.ends: list[int] = []
        stack = [iter(tree.body)]
        open_statements: list[int] = []
        while stack:
            stmt = next(stack[-1], None)
            if stmt is None:
                stack.pop()
                if open_statements:
                    self.ends[open_statements.pop()] = len(self.statements)
                continue
            n = len(self.statements)
            self.number[id(stmt)] = n
            self.statements.append(stmt)
            self.ends.append(n + 1)
            blocks = [b for b in _nested_blocks(stmt) if b]
            if blocks:
                open_statements.append(n)
                stack.append(iter([s for block in blocks for s in block]))
        self._ranked: dict[int, dict] = {}  # statement number -> {id(node): NodeKey}
        self.subtrees: dict[NodeKey, tuple[int, int, int]] = {}

    def statement_of(self, node: ast.AST) -> ast.stmt:
        while not isinstance(node, ast.stmt):
            node = self.parents[node]
        return node

    def key(self, node: ast.AST) -> NodeKey:
        if isinstance(node, ast.stmt):
            return NodeKey(self.number[id(node)], Kind.STATEMENT)
        n = self.number[id(self.statement_of(node))]
        ranked = self._ranked.get(n)
        if ranked is None:
            ranked = self._rank(n)
        return ranked[id(node)]

    def _rank(self, n: int) -> dict:
        """Rank statement n's own calls, attributes and names, and count what each one holds."""
        own = []
        stack = _children(self.statements[n])
        while stack:
            node = stack.pop()
            if node.__class__ in _COUNTED:
                own.append(node)
            stack += _children(node)
        own.sort(key=_span)
        ranked = {}
        counters = [0, 0, 0]
        open_nodes: list[tuple[tuple[int, int], list[int]]] = []  # (end, counts) of the enclosing nodes
        subtrees = []
        for node in own:
            kind = _COUNTED[node.__class__]
            i = _INDEX[kind]
            key = NodeKey(n, kind, counters[i])
            counters[i] += 1
            ranked[id(node)] = key
            # What each node's subtree holds: the nodes after it in source order that end within it.
            start = (node.lineno, node.col_offset)
            while open_nodes and not (start < open_nodes[-1][0]):
                open_nodes.pop()
            for _end, counts in open_nodes:
                counts[i] += 1
            counts = [0, 0, 0]
            subtrees.append((key, counts))
            open_nodes.append(((node.end_lineno, node.end_col_offset), counts))
        for key, counts in subtrees:
            self.subtrees[key] = tuple(counts)
        self._ranked[n] = ranked
        return ranked

    def ranked_subtrees(self) -> dict[NodeKey, tuple[int, int, int]]:
        """The subtree counts of every node of every statement ranked so far."""
        return self.subtrees
