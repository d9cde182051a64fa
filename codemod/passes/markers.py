"""Marker comments on sites left unconverted: ``# torch2ms: CODE title`` at the end of the line of the
statement the site is in (of the header of a compound statement the site is in the header of)."""

from __future__ import annotations

import ast

from ..migration import Migration
from ..plan import Marker

MARKER = "# torch2ms:"
_COMPOUND = (ast.If, ast.While, ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.FunctionDef,
             ast.AsyncFunctionDef, ast.ClassDef, ast.Try, ast.Match)


def plan_markers(mig: Migration) -> None:
    if not mig.config.markers:
        return
    written: dict[int, str] = {}  # line -> its text, with the markers planned so far
    for site in mig.sites:
        if site.marker is None:
            continue
        code, _message, node = site.marker
        if not mig.rules.reports(code):
            continue
        stmt, line = _comment_place(mig, node)
        existing = written.setdefault(line, mig.text.line_text(line))
        tag = f"{MARKER} {code}"
        if tag in existing:
            continue  # idempotent: the marker is already there
        mig.change(site, Marker(site.id, mig.key(stmt), f"{tag} {mig.rules.findings[code].title}"))
        written[line] = existing + tag


def _comment_place(mig: Migration, node: ast.AST) -> tuple[ast.stmt, int]:
    """The statement whose line end takes a comment about ``node``, and that line: the end of the
    statement, or the line of the header of the compound statement ``node`` is in the header of."""
    child = node
    p = node
    while not isinstance(p, ast.stmt):
        child = p
        p = mig.parent(p)
    if isinstance(p, _COMPOUND):
        # The colon ends the header, after its last part.
        header_end = max((n.end_lineno for n in _header_parts(p)), default=p.lineno)
        return p, header_end if child is not p else p.lineno
    return p, p.end_lineno


def _header_parts(stmt: ast.stmt):
    for name in ("test", "iter", "target", "items", "decorator_list", "bases", "keywords", "args", "returns", "subject"):
        value = getattr(stmt, name, None)
        if isinstance(value, list):
            yield from (v for v in value if hasattr(v, "end_lineno"))
            for v in value:
                if isinstance(v, ast.withitem):
                    yield v.context_expr
        elif value is not None and hasattr(value, "end_lineno"):
            yield value
