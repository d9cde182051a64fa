"""Comma-separated lists in source text -- a call's arguments, an import's names -- edited in place.

An element owns the comma after it, with the whitespace and comments around that comma (the way
LibCST's nodes own them), so dropping an element takes its comma along, and the element that ends
up last is given the list's original last comma, so a trailing comma stays where it was. Positions
come from ``ast``; between two elements there is only punctuation, whitespace and comments, which
a small scanner reads. This runs on every migrated call: it keeps LibCST out of the hot path
(importing LibCST alone costs more than migrating a dozen files), and tests/test_sequences.py
checks it against LibCST's own rendering of the same edits.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .source import SourceText


@dataclass
class Element:
    start: int  # the element's first character (its opening parentheses included)
    end: int  # just after its last character (its closing parentheses included)
    value_start: int  # where its value begins: after ``name=`` for a keyword argument
    keyword: str | None  # the keyword of a keyword argument
    space: str  # the whitespace after the list's last element when no comma follows it
    comma: str  # the comma after it with the whitespace around it, up to the next element


@dataclass
class CommaList:
    text: str
    elements: list[Element]
    content_start: int  # just after the opening bracket (or the ``import`` keyword)
    close: int  # where the text after the list begins (a call's ``)``)

    def core(self, element: Element) -> str:
        return self.text[element.start : element.end]

    def value(self, element: Element) -> str:
        return self.text[element.value_start : element.end]

    def with_keyword(self, element: Element, keyword: str | None, value: str | None = None) -> str:
        """The element spelled with ``keyword`` (added, renamed or kept) and ``value`` (None: as is)."""
        value = self.value(element) if value is None else value
        if element.keyword is None:
            return value if keyword is None else f"{keyword}={value}"
        equals = self.text[element.start + len(element.keyword) : element.value_start]  # '=' as spaced
        return f"{keyword or element.keyword}{equals}{value}"

    def separator(self) -> str:
        """The comma and whitespace that separate elements in this list's layout."""
        for element in self.elements[:-1]:
            if element.comma:
                return element.comma
        first = self.elements[0].start if self.elements else self.close
        opening = self.text[self.content_start : first]
        if "\n" in opening.replace("\\\n", "") or "\r" in opening.replace("\\\r", ""):
            return "," + opening  # one element per line: the next one goes on a line of its own
        return ", "

    def rewrite(self, cores: list[str | None], added: list[str] = ()) -> str:
        """The text with each element replaced by its entry in ``cores`` (None drops it) and
        ``added`` appended, each element keeping the comma and whitespace that followed it."""
        if len(cores) != len(self.elements):
            raise ValueError(f"{len(cores)} replacements for {len(self.elements)} elements")
        # [element, comma, space]: LibCST writes an argument's own trailing space after its comma.
        pieces = [[core, e.comma, e.space] for e, core in zip(self.elements, cores) if core is not None]
        if added:
            separator = self.separator()
            for core in added:
                if pieces:
                    pieces[-1][1] = separator
                pieces.append([core, "", ""])
        if pieces:
            pieces[-1][1] = self.elements[-1].comma if self.elements else ""  # the trailing comma stays
        start = self.elements[0].start if self.elements else self.close
        return self.text[:start] + "".join("".join(p) for p in pieces) + self.text[self.close :]


def _punctuation(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """(offset, character) of what stands in ``text[start:end]`` besides whitespace, comments and
    line continuations: between the elements of a list that is brackets, commas, ``=`` and ``*``."""
    out = []
    i = start
    while i < end:
        c = text[i]
        if c == "#":
            while i < end and text[i] not in "\r\n":
                i += 1
            continue
        if c not in " \t\f\r\n\\":
            out.append((i, c))
        i += 1
    return out


def _opening_parenthesis(text: str, start: int, end: int) -> int | None:
    return next((i for i, c in _punctuation(text, start, end) if c == "("), None)


def _value_start(text: str, start: int, value_start: int) -> int:
    """Where a value begins with its opening parentheses, which stand between ``start`` and it."""
    opening = _opening_parenthesis(text, start, value_start)
    return value_start if opening is None else opening


def call_arguments(text: str) -> CommaList:
    """The argument list of the call that ``text`` is (as ``ast`` spans a Call node)."""
    # In parentheses: the call may span lines outside any bracket of its own, as in
    # ``(nn.BatchNorm2d\n (3))``, whose Call node is the text from ``nn`` to the last ``)``.
    call = ast.parse(f"({text})", mode="eval").body
    if not isinstance(call, ast.Call) or not text.endswith(")"):
        raise ValueError(f"not a call: {text!r}")
    src = _Shifted(f"({text})")
    close = len(text) - 1
    nodes = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
    func_end = src.end(call.func)
    opening = _opening_parenthesis(text, func_end, src.start(nodes[0]) if nodes else close)
    if opening is None or (len(nodes) == 1 and isinstance(nodes[0], ast.GeneratorExp)
                           and src.start(nodes[0]) <= opening):
        # f(x for x in y): the generator's span is the call's parentheses (and it is the only argument)
        if nodes:
            return _generator_argument(text, func_end, close)
        raise ValueError(f"no argument list in {text!r}")
    spans = []
    lead = opening + 1  # where the punctuation before the next element begins
    for node in nodes:
        value = node.value if isinstance(node, (ast.keyword, ast.Starred)) else node
        value_start = src.start(value)
        if isinstance(node, (ast.keyword, ast.Starred)):
            start = src.start(node)  # the keyword's name, or the star(s)
            after_name = start + (len(node.arg) if isinstance(node, ast.keyword) and node.arg else 0)
            value_start = _value_start(text, after_name, value_start)
        else:
            start = value_start = _value_start(text, lead, value_start)
        spans.append((node, start, value_start, src.end(value)))
        lead = src.end(value)
    return _build(text, spans, opening + 1, close, trailing_space_is_element=True)


class _Shifted(SourceText):
    """Offsets in the text that was wrapped in parentheses to be parsed."""

    def offset(self, lineno: int, col_byte: int) -> int:
        return super().offset(lineno, col_byte) - 1


def _generator_argument(text: str, func_end: int, close: int) -> CommaList:
    opening = text.index("(", func_end)
    inner = text[opening + 1 : close]
    start = opening + 1 + len(inner) - len(inner.lstrip())
    end = opening + 1 + len(inner.rstrip())
    return CommaList(text, [Element(start, end, start, None, text[end:close], "")], opening + 1, close)


def import_names(text: str) -> CommaList:
    """The names of the import statement that ``text`` is."""
    module = ast.parse(text)
    if len(module.body) != 1 or not isinstance(module.body[0], (ast.Import, ast.ImportFrom)):
        raise ValueError(f"not an import statement: {text!r}")
    stmt = module.body[0]
    src = SourceText(text)
    spans = [(alias, src.start(alias), src.start(alias), src.end(alias)) for alias in stmt.names]
    closing = [i for i, c in _punctuation(text, spans[-1][3], len(text)) if c == ")"]
    close = closing[-1] if closing else len(text)
    return _build(text, spans, spans[0][1], close, trailing_space_is_element=False)


def _build(text: str, spans: list[tuple[ast.AST, int, int, int]], content_start: int, close: int,
           trailing_space_is_element: bool) -> CommaList:
    """Elements from (node, start, value start, value end) in order: the closing parentheses and
    the comma after each value are found between it and the next element."""
    elements = []
    for k, (node, start, value_start, value_end) in enumerate(spans):
        next_start = spans[k + 1][1] if k + 1 < len(spans) else close
        end, comma_at = value_end, None
        for i, c in _punctuation(text, value_end, next_start):
            if c == ",":
                comma_at = i
                break
            if c == ")":
                end = i + 1
        keyword = node.arg if isinstance(node, ast.keyword) else None
        elements.append(Element(start, end, value_start, keyword, "", ""))
        if comma_at is None and k + 1 < len(spans):
            raise ValueError(f"no comma between two elements of {text!r}")
    for k, element in enumerate(elements):
        following = elements[k + 1].start if k + 1 < len(elements) else close
        after = text[element.end : following]
        if any(c == "," for _, c in _punctuation(text, element.end, following)):
            element.comma = after
        elif trailing_space_is_element:
            element.space = after  # a call's last argument owns the space before ``)``
        else:
            close = element.end  # an import's ``)`` owns the space before it
    return CommaList(text, elements, content_start, close)
