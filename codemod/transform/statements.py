"""Statements: inserted after others (``m.set_train()``, frozen parameters, new imports), replaced
(a torch import by its MindSpore counterpart) or removed, and marker comments at the end of a
statement's line (of a compound statement's header).

A statement that has its line to itself gets the new statements on lines of their own, after it;
one that shares its line (``a = f(); b = 2``, ``if c: m = g()``) gets them after it on that line.
A removed line's comments and blank lines above it stay where they were.
"""

from __future__ import annotations

import libcst as cst

from ..plan import InsertStatement, Marker, ReplaceStatement
from . import templates
from .base import PlannedTransformer

_COMPOUND = (cst.FunctionDef, cst.ClassDef, cst.If, cst.For, cst.While, cst.With, cst.Try, cst.TryStar, cst.Match)


class Statements(PlannedTransformer):
    handles = (InsertStatement, ReplaceStatement, Marker)

    def __init__(self, changes, locator):
        super().__init__(changes, locator)
        self._removed: set[int] = set()  # ids of lines left with no statement: dropped by their block

    # -- lines ------------------------------------------------------------------------------------

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        own_line = len(original.body) == 1 and original.body[0].semicolon is cst.MaybeSentinel.DEFAULT
        statements, markers, changed = self._statements(original, updated)
        if not changed:
            return updated
        trailing = _marked(updated.trailing_whitespace, markers)
        if own_line:
            return self._own_line(updated, statements, trailing)
        body = [s for s, _inserted in statements] or [cst.Pass()]
        return updated.with_changes(body=body, trailing_whitespace=trailing)

    def leave_SimpleStatementSuite(self, original: cst.SimpleStatementSuite, updated: cst.SimpleStatementSuite):
        statements, markers, changed = self._statements(original, updated)
        if not changed:
            return updated
        return updated.with_changes(body=[s for s, _inserted in statements] or [cst.Pass()],
                                    trailing_whitespace=_marked(updated.trailing_whitespace, markers))

    def _statements(self, original, updated):
        """The line's small statements, each followed by those inserted after it, as (statement,
        inserted?); its markers; whether anything changed."""
        statements, markers, changed = [], [], False
        for old, new in zip(original.body, updated.body):
            kept, inserted = [new], []
            for change in self.changes(old):
                changed = True
                if isinstance(change, ReplaceStatement):
                    kept = [templates.statement(t).body[0] for t in change.statements]
                elif isinstance(change, InsertStatement):
                    target = _target(new)
                    values = {"target": target.deep_clone()} if target is not None else {}
                    inserted.append(templates.statement(change.template, values).body[0])
                elif isinstance(change, Marker):
                    markers.append(change.text)
            statements += [(s, False) for s in kept] + [(s, True) for s in inserted]
        return statements, markers, changed

    def _own_line(self, line: cst.SimpleStatementLine, statements, trailing: cst.TrailingWhitespace):
        kept = [s for s, inserted in statements if not inserted]
        inserted = [s for s, inserted in statements if inserted]
        if not kept:  # removed: the block drops the line (or keeps it as ``pass``)
            line = line.with_changes(body=[cst.Pass()], trailing_whitespace=trailing)
            self._removed.add(id(line))
            return cst.FlattenSentinel([line, *(cst.SimpleStatementLine(body=[s]) for s in inserted)]) \
                if inserted else line
        # The first new statement takes the place of the old (with its comments above); the line's
        # own end (comment, markers) stays with the last statement that replaced the old one.
        lines = [line.with_changes(body=[kept[0]], trailing_whitespace=cst.TrailingWhitespace())]
        lines += [cst.SimpleStatementLine(body=[s]) for s in kept[1:]]
        lines[-1] = lines[-1].with_changes(trailing_whitespace=trailing)
        lines += [cst.SimpleStatementLine(body=[s]) for s in inserted]
        return cst.FlattenSentinel(lines) if len(lines) > 1 else lines[0]

    # -- blocks -----------------------------------------------------------------------------------

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        body, footer = self._drop_removed(updated.body, updated.footer)
        return updated.with_changes(body=body, footer=footer) if body is not updated.body else updated

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        body, footer = self._drop_removed(updated.body, updated.footer)
        return updated.with_changes(body=body, footer=footer) if body is not updated.body else updated

    def _drop_removed(self, body, footer):
        if not self._removed or not any(id(line) in self._removed for line in body):
            return body, footer
        kept, carried = [], []
        for line in body:
            if id(line) in self._removed and len(body) > 1:
                carried.extend(line.leading_lines)
                continue
            if carried:
                line = line.with_changes(leading_lines=[*carried, *line.leading_lines])
                carried = []
            kept.append(line)
        if not kept:  # every line went: the last one stays, as ``pass``
            return [body[-1]], footer
        return kept, [*carried, *footer]

    # -- headers ----------------------------------------------------------------------------------

    @classmethod
    def leaves(cls) -> set[type]:
        return super().leaves() | set(_COMPOUND)

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):
        result = super().on_leave(original, updated)
        if type(original) in _COMPOUND and isinstance(result, _COMPOUND):
            markers = [c.text for c in self.changes(original) if isinstance(c, Marker)]
            if markers:
                result = _mark_header(result, markers)
        return result


def _target(statement: cst.BaseSmallStatement) -> cst.BaseExpression | None:
    if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
        return statement.targets[0].target
    if isinstance(statement, cst.AnnAssign):
        return statement.target
    return None


def _marked(trailing: cst.TrailingWhitespace, markers: list[str]) -> cst.TrailingWhitespace:
    if not markers:
        return trailing
    text = "  ".join(markers)
    if trailing.comment is not None:
        return trailing.with_changes(comment=cst.Comment(f"{trailing.comment.value}  {text}"))
    return trailing.with_changes(whitespace=cst.SimpleWhitespace(trailing.whitespace.value + "  "),
                                 comment=cst.Comment(text))


def _mark_header(statement: cst.BaseCompoundStatement, markers: list[str]):
    body = statement.body
    if isinstance(body, cst.IndentedBlock):
        return statement.with_changes(body=body.with_changes(header=_marked(body.header, markers)))
    return statement.with_changes(body=body.with_changes(trailing_whitespace=_marked(body.trailing_whitespace, markers)))
