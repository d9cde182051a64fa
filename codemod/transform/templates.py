"""Templates (plan.py) made into LibCST nodes.

A template is parsed by LibCST once, with each ``{hole}`` written as a placeholder name, and the path
from the root to each placeholder is recorded. Filling it rebuilds only those paths, so a converted
argument costs a few ``with_changes`` instead of a parse. A placeholder keeps the parentheses the
template put around it (``1 - ({value})``).

(``libcst.helpers.parse_template_expression`` parses on every call, about 2.5 ms here, and drops the
parentheses written around a placeholder.)
"""

from __future__ import annotations

import dataclasses
import functools
import string
from typing import Mapping, Sequence

import libcst as cst

from ..plan import Template

_PLACEHOLDER = "__torch2ms_hole_{}__"
Path = tuple[tuple[str, int | None], ...]  # (field, index in a sequence field or None), root first


@dataclasses.dataclass(frozen=True)
class Compiled:
    node: cst.CSTNode
    holes: tuple[tuple[str, Path], ...]  # (hole name, path to its placeholder)


def _placeholders(text: str) -> tuple[str, list[str]]:
    """The template with its holes written as placeholder names, and the holes in order."""
    out, holes = [], []
    for literal, field, spec, _conversion in string.Formatter().parse(text):
        out.append(literal)
        if field is not None:
            out.append(_PLACEHOLDER.format(len(holes)))
            holes.append(f"{field}:{spec}" if spec else field)  # {arg:running_mean}
    return "".join(out), holes


def _paths(node: cst.CSTNode, count: int) -> list[Path]:
    found: dict[int, Path] = {}
    names = {_PLACEHOLDER.format(i): i for i in range(count)}

    def walk(n: cst.CSTNode, path: Path) -> None:
        if isinstance(n, cst.Name) and n.value in names:
            found[names[n.value]] = path
            return
        for f in dataclasses.fields(n):
            value = getattr(n, f.name)
            if isinstance(value, cst.CSTNode):
                walk(value, path + ((f.name, None),))
            elif isinstance(value, Sequence) and not isinstance(value, str):
                for i, item in enumerate(value):
                    if isinstance(item, cst.CSTNode):
                        walk(item, path + ((f.name, i),))

    walk(node, ())
    return [found[i] for i in range(count)]


@functools.lru_cache(maxsize=1024)
def compile_expression(text: str) -> Compiled:
    source, holes = _placeholders(text)
    node = cst.parse_expression(source)
    return Compiled(node, tuple(zip(holes, _paths(node, len(holes)))))


@functools.lru_cache(maxsize=1024)
def compile_statement(text: str) -> Compiled:
    """A one-line statement, as the line LibCST would make of it (``SimpleStatementLine``)."""
    source, holes = _placeholders(text)
    # parse_module: parse_statement costs three times as much for the same line.
    node = cst.parse_module(source + "\n").body[0]
    return Compiled(node, tuple(zip(holes, _paths(node, len(holes)))))


def _replace(node: cst.CSTNode, path: Path, new: cst.BaseExpression) -> cst.CSTNode:
    if not path:
        # The placeholder's parentheses stay, around whatever fills it.
        return new.with_changes(lpar=[*node.lpar, *new.lpar], rpar=[*new.rpar, *node.rpar])
    (field, index), rest = path[0], path[1:]
    child = getattr(node, field)
    if index is None:
        return node.with_changes(**{field: _replace(child, rest, new)})
    items = list(child)
    items[index] = _replace(items[index], rest, new)
    return node.with_changes(**{field: items})


def fill(compiled: Compiled, values: Mapping[str, cst.BaseExpression]) -> cst.CSTNode:
    node = compiled.node
    for hole, path in compiled.holes:
        node = _replace(node, path, values[hole])
    return node


def dotted(text: str) -> cst.BaseExpression:
    """``a.b.c`` as a Name or Attribute chain (built, not parsed: it is on every converted reference)."""
    parts = text.split(".")
    node: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def expression(template: Template, values: Mapping[str, cst.BaseExpression] = {}) -> cst.BaseExpression:
    """The template as an expression; ``values`` fill its holes, spelled names fill ``{name:...}``."""
    return fill(compile_expression(template.text), _with_names(template, values))


def statement(template: Template, values: Mapping[str, cst.BaseExpression] = {}) -> cst.SimpleStatementLine:
    return fill(compile_statement(template.text), _with_names(template, values))


def _with_names(template: Template, values: Mapping[str, cst.BaseExpression]) -> Mapping[str, cst.BaseExpression]:
    if not template.names:
        return values
    merged = dict(values)
    for hole, spelling in template.names:
        merged[hole] = dotted(str(spelling))
    return merged
