"""Finding the plan's nodes in the LibCST tree, without position metadata.

The traversal numbers statements and ranks each statement's own calls, attributes and names exactly
as ``codemod/facts/keys.py`` does on the ``ast`` (names: only those that are ``ast.Name`` nodes there, not
attribute names, parameters, keywords...). It also tells the traversal what it may skip: a
statement, or a call, attribute or name, inside which the plan changes nothing (its counts come from
the plan), so a file is visited only along the paths to what changes.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import defaultdict
from typing import Iterable

import libcst as cst

from ..plan import Kind, NodeKey, Plan


def _concrete(base: type) -> frozenset[type]:
    out, stack = set(), [base]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not getattr(cls, "__abstractmethods__", None):
            out.add(cls)
    return frozenset(out)


# Exact types, looked up in a set: isinstance against LibCST's abstract bases is slow.
STATEMENTS = _concrete(cst.BaseSmallStatement) | _concrete(cst.BaseCompoundStatement)
_IMPORTS = frozenset({cst.Import, cst.ImportFrom})
_KIND_INDEX = {Kind.CALL: 0, Kind.ATTRIBUTE: 1, Kind.NAME: 2}
_KIND_OF = {cst.Call: Kind.CALL, cst.Attribute: Kind.ATTRIBUTE, cst.Name: Kind.NAME}
# LibCST Names that are not expressions (``ast`` has strings there), and keywords that are
# constants in ``ast``.
_NOT_EXPRESSIONS = frozenset({
    (cst.Attribute, "attr"), (cst.FunctionDef, "name"), (cst.ClassDef, "name"), (cst.Param, "name"),
    (cst.Arg, "keyword"), (cst.ExceptHandler, "name"), (cst.ExceptStarHandler, "name"),
    (cst.MatchAs, "name"), (cst.MatchStar, "name"), (cst.MatchMapping, "rest"),
    (cst.MatchKeywordElement, "key"), (cst.NameItem, "name"),
})
_CONSTANTS = frozenset({"True", "False", "None"})


class Locator:
    """Keys of the nodes a traversal visits. ``enter`` and ``leave`` are called for every node the
    traversal reaches, ``enter_field``/``leave_field`` around every field it visits."""

    def __init__(self, plan: Plan, also: Iterable[NodeKey] = ()):
        """Keys for the nodes of ``plan``'s changes, and for those ``also`` names."""
        self.ends = plan.statement_ends
        self.subtrees = plan.subtrees
        # statement -> kind -> sorted ranks the plan names; statements the plan names, sorted.
        self.wanted: dict[int, dict[Kind, list[int]]] = defaultdict(lambda: defaultdict(list))
        statements = set()
        for key in itertools.chain((c.key for c in plan.changes), also):
            statements.add(key.statement)
            if key.kind is not Kind.STATEMENT:
                self.wanted[key.statement][key.kind].append(key.ordinal)
        for by_kind in self.wanted.values():
            for ranks in by_kind.values():
                ranks.sort()
        self.statements = sorted(statements)
        self.next_statement = 0
        self.stack: list[tuple[int, list[int]]] = []  # (statement, ranks given so far per kind)
        self.keys: dict[int, NodeKey] = {}  # id(original node) -> key, for the nodes entered
        self.hidden_names = 0  # > 0 inside a field whose Names are not expressions

    def key(self, node: cst.CSTNode) -> NodeKey | None:
        return self.keys.get(id(node))

    def enter(self, node: cst.CSTNode) -> bool:
        """Key the node; False when nothing inside it changes (the traversal skips it)."""
        t = type(node)
        if t in STATEMENTS:
            n = self.next_statement
            end = self.ends[n]
            self.next_statement = n + 1
            self.keys[id(node)] = NodeKey(n, Kind.STATEMENT)
            self.stack.append((n, [0, 0, 0]))
            if t in _IMPORTS:
                return False  # its names are not expressions; import changes apply to the whole statement
            if n in self.wanted or self._statement_in(n + 1, end):
                return True
            self.next_statement = end
            return False
        kind = _KIND_OF.get(t)
        if kind is None or not self.stack:
            return True
        n, given = self.stack[-1]
        wanted = self.wanted.get(n)
        if wanted is None:
            return False  # the statement's own nodes do not change: no need to rank them
        if kind is Kind.NAME and (self.hidden_names or node.value in _CONSTANTS):
            return True
        i = _KIND_INDEX[kind]
        key = NodeKey(n, kind, given[i])
        given[i] += 1
        self.keys[id(node)] = key
        held = self.subtrees[key]
        if any(_ranks_in(wanted.get(k), given[_KIND_INDEX[k]], given[_KIND_INDEX[k]] + held[_KIND_INDEX[k]])
                          for k in (Kind.CALL, Kind.ATTRIBUTE, Kind.NAME)):
            return True
        for k in range(3):
            given[k] += held[k]
        return False

    def leave(self, node: cst.CSTNode) -> None:
        if type(node) in STATEMENTS:
            self.stack.pop()

    def enter_field(self, node: cst.CSTNode, field: str) -> None:
        if (type(node), field) in _NOT_EXPRESSIONS:
            self.hidden_names += 1

    def leave_field(self, node: cst.CSTNode, field: str) -> None:
        if (type(node), field) in _NOT_EXPRESSIONS:
            self.hidden_names -= 1

    def _statement_in(self, low: int, high: int) -> bool:
        i = bisect_left(self.statements, low)
        return i < len(self.statements) and self.statements[i] < high


def _ranks_in(ranks: list[int] | None, low: int, high: int) -> bool:
    if not ranks:
        return False
    i = bisect_left(ranks, low)
    return i < len(ranks) and ranks[i] < high
