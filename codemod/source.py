"""Positions and text edits on the original source.

The analysis runs on Python's ``ast`` (positions in UTF-8 bytes per line); every change is an edit
on the original text, so whatever the tool does not own stays byte-for-byte. Edits nest: an edit
may be a *rewrite* whose new text is computed from the text it covers after the edits inside it
were applied (a constructor call whose arguments contain a renamed attribute, say).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Callable, Union

_NEWLINE = re.compile(r"\r\n|\r|\n")


class SourceText:
    def __init__(self, text: str):
        self.text = text
        if "\r" in text:
            starts = [0]
            starts.extend(m.end() for m in _NEWLINE.finditer(text))
        else:  # the common case, without a regex match object per line
            starts = [0]
            pos = text.find("\n")
            while pos >= 0:
                starts.append(pos + 1)
                pos = text.find("\n", pos + 1)
        self.line_starts = starts
        first = _NEWLINE.search(text)
        self.newline = first.group(0) if first else "\n"

    # -- positions -------------------------------------------------------------------------------

    def line_text(self, lineno: int) -> str:
        """Line ``lineno`` (1-based) without its line break."""
        start = self.line_starts[lineno - 1]
        end = self.line_starts[lineno] if lineno < len(self.line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")

    def line_end(self, lineno: int) -> int:
        """Offset of the end of line ``lineno``, before its line break."""
        start = self.line_starts[lineno - 1]
        return start + len(self.line_text(lineno))

    def offset(self, lineno: int, col_byte: int) -> int:
        """String offset of an ast position (line 1-based, column in UTF-8 bytes)."""
        start = self.line_starts[lineno - 1]
        if col_byte == 0:
            return start
        line = self.text[start : start + col_byte]
        if line.isascii():
            return start + col_byte
        # A non-ASCII line: count code points up to the byte column.
        encoded = self.line_text(lineno).encode("utf-8")
        return start + len(encoded[:col_byte].decode("utf-8", errors="replace"))

    def char_col(self, lineno: int, col_byte: int) -> int:
        return self.offset(lineno, col_byte) - self.line_starts[lineno - 1]

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.start(node), self.end(node)

    def segment(self, node: ast.AST) -> str:
        return self.text[self.start(node) : self.end(node)]

    def position(self, offset: int) -> tuple[int, int]:
        """(line 1-based, column 0-based in code points) of a string offset."""
        import bisect

        line = bisect.bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1]

    def indent_of_line(self, lineno: int) -> str:
        line = self.line_text(lineno)
        return line[: len(line) - len(line.lstrip(" \t"))]


# ---------------------------------------------------------------------------------------------
# Edits


Renderer = Callable[[str], str]


@dataclass
class Edit:
    """Replace [start, end) of the original text.

    ``text`` is the new text, or a callable that receives the covered text (with nested edits
    already applied) and returns the new text. ``site`` names the site the edit belongs to.
    """

    start: int
    end: int
    text: Union[str, Renderer, Callable[[], str]]
    site: str = ""
    order: int = 0
    children: list["Edit"] = field(default_factory=list, repr=False)

    @property
    def is_rewrite(self) -> bool:
        return callable(self.text) and getattr(self.text, "rewrite", False)


def rewrite(fn: Renderer) -> Renderer:
    """Mark a callable as a rewrite of the text it covers (as opposed to a lazy replacement)."""
    fn.rewrite = True  # type: ignore[attr-defined]
    return fn


class EditConflict(Exception):
    pass


def _nest(edits: list[Edit]) -> list[Edit]:
    """Arrange edits into a forest by containment; partial overlaps are conflicts."""
    ordered = sorted(edits, key=lambda e: (e.start, -e.end, e.order))
    roots: list[Edit] = []
    stack: list[Edit] = []
    for e in ordered:
        e.children = []
        while stack and not _contains(stack[-1], e):
            stack.pop()
        if stack:
            parent = stack[-1]
            if e.start < parent.end and e.end > parent.end:
                raise EditConflict(f"edits overlap: {parent} / {e}")
            parent.children.append(e)
        else:
            if roots and e.start < roots[-1].end:
                raise EditConflict(f"edits overlap: {roots[-1]} / {e}")
            roots.append(e)
        stack.append(e)
    return roots


def _contains(outer: Edit, inner: Edit) -> bool:
    if outer.start == outer.end:  # an insertion contains nothing
        return False
    if inner.start == inner.end:  # insertions at a boundary belong outside
        return outer.start < inner.start < outer.end
    return outer.start <= inner.start and inner.end <= outer.end


def _render(text: str, start: int, end: int, edits: list[Edit]) -> str:
    out = []
    pos = start
    for e in edits:
        out.append(text[pos : e.start])
        out.append(_render_edit(text, e))
        pos = e.end
    out.append(text[pos:end])
    return "".join(out)


def _render_edit(text: str, e: Edit) -> str:
    if isinstance(e.text, str):
        return e.text
    if e.is_rewrite:
        rendered = e.text(_render(text, e.start, e.end, e.children))
    elif e.children:
        raise EditConflict(f"a replacement would discard the edits inside it: {e}")
    else:
        rendered = e.text()
    # Keep the result, not the function: the function holds the analysis, which can then be freed.
    e.text = rendered
    return rendered  # a lazy replacement (decided after all sites are planned)


def apply_edits(text: str, edits: list[Edit]) -> str:
    if not edits:
        return text
    return _render(text, 0, len(text), _nest(list(edits)))
