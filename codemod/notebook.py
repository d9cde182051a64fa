"""Jupyter notebooks: the code cells are migrated like a module; the JSON is only touched where a
cell's code changed.

The cells of a notebook share one namespace (an import in the first cell serves the tenth), so the
code cells are joined into one module, migrated once, and split again at boundary comments.
IPython syntax that is not Python - line magics ``%...``, shell lines ``!...``, ``x = !cmd``,
help ``obj?`` - is replaced by a ``pass`` placeholder on the same line and restored afterwards,
so line numbers hold. A cell magic (``%%bash`` ...) leaves its cell alone, except the few whose
body is Python (``%%time``, ``%%timeit``, ``%%capture``), where only the magic line is masked.

The JSON is never re-serialised: the ``source`` value of a changed cell is replaced in the text,
in the notebook's own style (one string per line or one string; its indentation; unchanged lines
keep their exact escaping), so key order, indentation, outputs and metadata stay byte for byte,
and a notebook with nothing to change is not touched at all.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from json.decoder import scanstring
from typing import Iterator

from .engine import Config, MigrationError, MigrationResult, migrate_source, parse_source
from .findings import Finding

# Cell magics whose body is Python: the body is migrated, the magic line kept.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture"})

_BOUNDARY = "# __torch2ms_cell_{}__"
_PLACEHOLDER = "pass  # __torch2ms_ipython_{}__"
_PLACEHOLDER_LINE = re.compile(r"^[ \t]*pass  # __torch2ms_ipython_(\d+)__(?=\r?$)", re.M)
# A line IPython rewrites before Python sees it: a magic, a shell escape, a leading help mark, or an
# assignment from a magic or a shell command (``files = !ls``).
_IPYTHON_LINE = re.compile(r"[ \t]*(?:[%!]|\?|[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*[ \t]*=[ \t]*[%!])")
# ``obj?`` / ``obj.attr??``: help on a name (a comment ending in "?" is not one).
_HELP_SUFFIX = re.compile(r"[ \t]*[A-Za-z_][\w.]*(?:\(\))?\?\??[ \t]*$")
_LINES = re.compile(r"[^\n]*\n|[^\n]+")  # how Jupyter splits a source into strings
_PY_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # how Python counts lines
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class NotebookFinding(Finding):
    """A finding in a code cell: ``line``/``column`` count within the cell; ``cell`` is the cell's
    1-based position among all the notebook's cells; ``file_line`` the line of the .ipynb file
    that holds that source line (for tools that show the file itself, e.g. SARIF viewers)."""

    cell: int = 0
    file_line: int | None = None

    def sort_key(self) -> tuple:
        return (self.path or "", self.cell, self.line, self.column, self.code, self.message)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["cell"] = self.cell
        return out

    def format(self) -> str:
        where = f"{self.path}:" if self.path else ""
        return f"{where}cell_{self.cell}:{self.line}:{self.column + 1}: {self.code} [{self.severity}] {self.message}"


@dataclass
class NotebookResult:
    code: str  # the notebook's JSON text
    findings: list[Finding]
    changed: bool
    sites_converted: int = 0
    remaining_torch: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # cells left as they were, and why


def count_converted(result: MigrationResult) -> int:
    """The sites a migration converted, as the summary counts them (import edits are not sites)."""
    return sum(1 for s in result.converted_sites if s.kind != "imports" and s.changes)


# -- locating values in the JSON text ---------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]


def _members(text: str, i: int) -> Iterator[tuple[str, int, int]]:
    """(key, start, end) of each member value of the JSON object at ``text[i]``."""
    if text[i] != "{":
        raise ValueError("expected an object")
    i = _skip_ws(text, i + 1)
    if text[i] == "}":
        return
    while True:
        key, i = scanstring(text, i + 1)
        i = _skip_ws(text, i)
        start = _skip_ws(text, i + 1)
        _, end = _DECODER.raw_decode(text, start)
        yield key, start, end
        i = _skip_ws(text, end)
        if text[i] == "}":
            return
        i = _skip_ws(text, i + 1)  # the comma


def _elements(text: str, i: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each element of the JSON array at ``text[i]``."""
    if text[i] != "[":
        raise ValueError("expected an array")
    i = _skip_ws(text, i + 1)
    if text[i] == "]":
        return
    while True:
        _, end = _DECODER.raw_decode(text, i)
        yield i, end
        i = _skip_ws(text, end)
        if text[i] == "]":
            return
        i = _skip_ws(text, i + 1)


@dataclass
class _Cell:
    number: int  # 1-based among all cells
    source: str
    span: tuple[int, int]  # of the source value in the JSON text
    elements: list[tuple[int, int]] | None  # the strings of a source array
    line_elements: list[int] = field(default_factory=list)  # source line (0-based) -> element index


def _code_cells(text: str) -> list[_Cell] | None:
    """The code cells of a Python notebook (nbformat 4), or None when it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ValueError("no 'cells' list (only nbformat 4 notebooks are supported)")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    language = (metadata.get("kernelspec") or {}).get("language") or (metadata.get("language_info") or {}).get("name")
    if isinstance(language, str) and language.lower() != "python":
        return None
    cells_at = next(start for key, start, _ in _members(text, 0) if key == "cells")
    out: list[_Cell] = []
    for number, (start, _end) in enumerate(_elements(text, cells_at), 1):
        members = {key: (s, e) for key, s, e in _members(text, start)}
        kind = members.get("cell_type")
        if kind is None or json.loads(text[kind[0]:kind[1]]) != "code" or "source" not in members:
            continue
        s, e = members["source"]
        value = json.loads(text[s:e])
        if isinstance(value, str):
            out.append(_Cell(number, value, (s, e), None))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            cell = _Cell(number, "".join(value), (s, e), list(_elements(text, s)))
            for index, piece in enumerate(value):
                cell.line_elements.extend([index] * max(piece.count("\n"), 1 if piece else 0))
            out.append(cell)
        else:
            raise ValueError(f"cell {number}: 'source' is neither a string nor a list of strings")
    return out


# -- masking IPython syntax ------------------------------------------------------------------


def _mask(source: str, masked: list[str]) -> str | None:
    """The cell's source with IPython-only lines replaced by placeholders (their originals
    appended to ``masked``), or None when the cell is not Python at all (``%%bash`` ...)."""
    lines = _PY_LINES.findall(source)
    if lines and lines[0].startswith("%%"):
        magic = lines[0][2:].split(None, 1)[0] if lines[0][2:].strip() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return None
        start = 0
    else:
        start = None
    out = []
    continued = False
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if continued or i == start or _IPYTHON_LINE.match(body) or _HELP_SUFFIX.match(body):
            indent = body[: len(body) - len(body.lstrip(" \t"))]
            out.append(indent + _PLACEHOLDER.format(len(masked)) + line[len(body):])
            masked.append(body)
            continued = body.endswith("\\")
        else:
            out.append(line)
    return "".join(out)


def _ends_with_newline(code: str) -> bool:
    return code.endswith(("\n", "\r"))


def _unmask(text: str, masked: list[str], restored: set[int]) -> str:
    def put_back(m: re.Match) -> str:
        index = int(m.group(1))
        restored.add(index)
        return masked[index]

    return _PLACEHOLDER_LINE.sub(put_back, text)


# -- the migration ---------------------------------------------------------------------------


class _Unmappable(Exception):
    """The migrated module could not be split back into its cells."""


def migrate_notebook(text: str, *, path: str | None = None, config: Config | None = None) -> NotebookResult:
    """Migrate the code cells of a notebook's JSON text. Raises MigrationError when the text is not
    a notebook; cells that are not Python are left as they are and listed in ``problems``."""
    config = config or Config()
    unchanged = NotebookResult(text, [], False)
    if not config.ruleset.prefilter.matches(text):
        return unchanged
    try:
        cells = _code_cells(text)
    except (ValueError, StopIteration, IndexError) as exc:
        raise MigrationError(f"not a notebook: {exc}", path) from None
    if not cells:
        return unchanged

    masked: list[str] = []
    parts: list[tuple[_Cell, str]] = []  # the cells that take part, and their masked source
    problems: list[str] = []
    for cell in cells:
        if not cell.source.strip():
            continue
        start = len(masked)
        code = _mask(cell.source, masked)
        if code is None:
            continue
        try:
            parse_source(code, path)
        except MigrationError as masked_error:
            try:  # a "%" or "!" the masking took for IPython may be Python after all
                parse_source(cell.source, path)
                del masked[start:]
                code = cell.source
            except MigrationError:
                problems.append(f"cell {cell.number}: not Python ({masked_error.line}:{masked_error.column + 1}: "
                                f"{masked_error.message}): left as it is")
                del masked[start:]
                continue
        parts.append((cell, code))
    if not parts:
        return NotebookResult(text, [], False, problems=problems)

    module, starts = _join(parts)
    result = migrate_source(module, path=path, config=config)
    file_lines = _FileLines(text)
    findings = [_cell_finding(f, parts, starts, file_lines) for f in result.findings]
    converted = count_converted(result)
    if not result.changed:
        return NotebookResult(text, findings, False, converted, list(result.remaining_torch), problems)
    try:
        new_sources = _split(result.code, parts, masked)
    except _Unmappable as exc:
        problems.append(f"the migrated cells could not be put back ({exc}): notebook left as it is")
        return NotebookResult(text, findings, False, 0, list(result.remaining_torch), problems)
    new_text = _replace_sources(text, [(cell, new) for (cell, _), new in zip(parts, new_sources) if new != cell.source])
    return NotebookResult(new_text, findings, new_text != text, converted, list(result.remaining_torch), problems)


def _join(parts: list[tuple[_Cell, str]]) -> tuple[str, list[int]]:
    """One module of the cells' code, each followed by a boundary comment; and the 1-based line
    of the module where each cell starts."""
    chunks = []
    starts = []
    line = 1
    for i, (_, code) in enumerate(parts):
        starts.append(line)
        if not _ends_with_newline(code):
            code += "\n"
        chunks.append(code)
        chunks.append(_BOUNDARY.format(i) + "\n")
        line += len(_NEWLINE.findall(code)) + 1
    return "".join(chunks), starts


def _split(module: str, parts: list[tuple[_Cell, str]], masked: list[str]) -> list[str]:
    out = []
    pos = 0
    restored: set[int] = set()
    for i, (cell, code) in enumerate(parts):
        boundary = _BOUNDARY.format(i) + "\n"
        at = module.find(boundary, pos)
        if at < 0 or (at > 0 and module[at - 1] != "\n") or module.find(boundary, at + 1) >= 0:
            raise _Unmappable(f"cell {cell.number}'s end is lost")
        piece = module[pos:at]
        pos = at + len(boundary)
        if not _ends_with_newline(code) and piece.endswith("\n"):
            piece = piece[:-1]  # the newline the join added
        out.append(_unmask(piece, masked, restored))
    if module[pos:].strip():
        raise _Unmappable("code after the last cell")
    if len(restored) != len(masked):
        raise _Unmappable("an IPython line was lost")
    return out


class _FileLines:
    """Line numbers of the .ipynb file itself."""

    def __init__(self, text: str):
        self.starts = [m.end() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) + 1


def _cell_finding(f: Finding, parts: list[tuple[_Cell, str]], starts: list[int], file_line: _FileLines) -> NotebookFinding:
    i = max(bisect.bisect_right(starts, f.line) - 1, 0)
    cell = parts[i][0]
    line = f.line - starts[i] + 1
    end_line = f.end_line - starts[i] + 1 if f.end_line is not None and f.end_line >= f.line else None
    if cell.elements and 0 < line <= len(cell.line_elements):
        stored_at = file_line(cell.elements[cell.line_elements[line - 1]][0])
    else:
        stored_at = file_line(cell.span[0])
    return NotebookFinding(f.code, f.severity, line, f.column, f.message, f.path, end_line,
                           f.end_column if end_line is not None else None, cell.number, stored_at)


# -- writing the sources back ----------------------------------------------------------------


def _replace_sources(text: str, changes: list[tuple[_Cell, str]]) -> str:
    ensure_ascii = text.isascii() and "\\u" in text  # the notebook's own escaping of non-ASCII
    out = text
    for cell, source in sorted(changes, key=lambda c: c[0].span[0], reverse=True):
        start, end = cell.span
        out = out[:start] + _render_source(text, cell, source, ensure_ascii) + out[end:]
    return out


def _render_source(text: str, cell: _Cell, source: str, ensure_ascii: bool) -> str:
    if cell.elements is None:
        return json.dumps(source, ensure_ascii=ensure_ascii)
    lines = _LINES.findall(source)
    if not lines:
        return "[]"
    # Lines that did not change keep their exact JSON spelling.
    spelled = {json.loads(text[s:e]): text[s:e] for s, e in cell.elements}
    items = [spelled.get(line) or json.dumps(line, ensure_ascii=ensure_ascii) for line in lines]
    elements = cell.elements
    start, end = cell.span
    if not elements:
        return "[" + ", ".join(items) + "]"
    opening = text[start + 1:elements[0][0]]
    closing = text[elements[-1][1]:end - 1]
    separator = text[elements[0][1]:elements[1][0]] if len(elements) > 1 else "," + (opening or " ")
    return "[" + opening + separator.join(items) + closing + "]"
