"""Text that goes after statements: inserted statements (``x.set_train()``, frozen parameters)
and marker comments on sites left unconverted."""

from __future__ import annotations

import ast

from ..engine import Migration

MARKER = "# torch2ms:"


def plan_statements(mig: Migration) -> None:
    text = mig.text
    stmts = {id(s): s for s in _statements_with_insertions(mig)}
    for stmt_id, queued in mig.post_statements.items():
        stmt = stmts.get(stmt_id)
        if stmt is None or not queued:
            continue
        start, end = text.span(stmt)
        prefix = text.text[text.line_starts[stmt.lineno - 1]:start]
        rest = text.text[end:text.line_end(stmt.end_lineno)]
        own_line = prefix.strip() == "" and (rest.strip() == "" or rest.lstrip().startswith("#"))
        for site, render in queued:
            if own_line:
                at = text.line_end(stmt.end_lineno)
                mig.edit(site, at, at, lambda render=render, prefix=prefix: text.newline + prefix + render())
            else:
                mig.edit(site, end, end, lambda render=render: "; " + render())


def _statements_with_insertions(mig: Migration):
    for queued in mig.post_statements.values():
        for site, _ in queued:
            stmt = site.post_stmt
            if stmt is not None:
                yield stmt


def plan_markers(mig: Migration) -> None:
    if not mig.config.markers:
        return
    text = mig.text
    per_line: dict[int, list] = {}
    for site in mig.sites:
        marker = site.marker
        if marker is None:
            continue
        code, _message, node = marker
        line = _comment_line(mig, node)
        per_line.setdefault(line, []).append((site, code))
    for line, items in sorted(per_line.items()):
        existing = text.line_text(line)
        at = text.line_end(line)
        for site, code in items:
            tag = f"{MARKER} {code}"
            if tag in existing:
                continue  # idempotent: the marker is already there
            title = mig.rules.findings[code].title
            mig.edit(site, at, at, f"  {tag} {title}")
            existing += tag


def _comment_line(mig: Migration, node: ast.AST) -> int:
    """The line where a comment about ``node`` can go: the end of its statement, or of the header of
    the compound statement it sits in."""
    child = node
    p = node
    while not isinstance(p, ast.stmt):
        child = p
        p = mig.parent(p)
    if isinstance(p, (ast.If, ast.While, ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.FunctionDef,
                      ast.AsyncFunctionDef, ast.ClassDef, ast.Try, ast.Match)):
        # In the header: after the last header expression (the colon follows on that line).
        header_end = max((n.end_lineno for n in _header_parts(p)), default=p.lineno)
        return header_end if child is not p else p.lineno
    return p.end_lineno


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
