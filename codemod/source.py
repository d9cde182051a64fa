"""Source text: parsing it (``parse_source``, BOM aside), and positions in it (``ast`` gives lines
and UTF-8 byte columns; findings and sites give lines and code-point columns, and quote the text of
nodes)."""

from __future__ import annotations

import ast
import re
import warnings

from .model import MigrationError

_NEWLINE = re.compile(r"\r\n|\r|\n")  # Python's line breaks (and LSP's; not str.splitlines's)


def line_starts(text: str) -> list[int]:
    """The offset where each line of ``text`` starts."""
    if "\r" in text:
        return [0, *(m.end() for m in _NEWLINE.finditer(text))]
    starts = [0]  # the common case, without a regex match object per line
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


class SourceText:
    def __init__(self, text: str):
        self.text = text
        self.line_starts = line_starts(text)

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


def strip_bom(source: str) -> tuple[str, str]:
    if source.startswith("\ufeff"):
        return "\ufeff", source[1:]
    return "", source


def parse_source(source: str, path: str | None = None) -> ast.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like are not ours
            return ast.parse(source, filename=path or "<source>")
    except SyntaxError as exc:
        line = exc.lineno or 1
        col = max((exc.offset or 1) - 1, 0)
        raise MigrationError(f"syntax error: {exc.msg} (not Python 3 source?)", path, line, col) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise MigrationError(f"cannot parse: {exc}", path) from None
