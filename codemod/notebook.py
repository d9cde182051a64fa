"""Jupyter notebooks: the code cells are migrated like a module; the JSON is only touched where a
cell's code changed.

The cells of a notebook share one namespace (an import in the first cell serves the tenth), so the
code cells are joined into one module, migrated once, and split again at boundary comments.
IPython syntax that is not Python - line magics ``%...``, shell lines ``!...``, ``x = !cmd``,
help ``obj?`` - is replaced by a placeholder statement on the same line and restored afterwards,
so line numbers hold. A magic that runs Python (``PYTHON_MAGICS``: ``%time``, ``%timeit``,
``%prun``, ``%debug``, ``%%capture``) is one mechanism for its line and its cell form: only the
magic word and its options are set aside; the code it runs (the rest of a ``%time ...`` line, the
body of a ``%%time`` cell, the setup statement of ``%%timeit``) stays in the module and is migrated
with the rest. Any other cell magic (``%%bash`` ...) leaves its cell alone.

A masked magic line may still use the notebook's names (an option torch2ms does not read, a magic of
an extension): its placeholder names them, so the migration sees the uses - a torch import that line
uses stays torch - and the line is reported (NB001). Should the migration still switch the binding
of a name such a line uses, the notebook is left as it is and the reason given.

The JSON is never re-serialised: the ``source`` value of a changed cell is replaced in the text,
in the notebook's own style (one string per line or one string; its indentation; unchanged lines
keep their exact escaping), so key order, indentation, outputs and metadata stay byte for byte,
and a notebook with nothing to change is not touched at all.
"""

from __future__ import annotations

import ast
import bisect
import getopt
import io
import json
import keyword
import re
import tokenize
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from json.decoder import scanstring
from typing import Iterator

from .engine import migrate_source
from .facts.references import is_torch
from .findings import Finding
from .model import Config, MigrationError, MigrationResult
from .ruleset import rules_of
from .source import line_starts, parse_source


@dataclass(frozen=True)
class PythonMagic:
    """How IPython reads a magic that runs Python code (``IPython/core/magics/execution.py``)."""

    options: str | None = None  # getopt letters of the options IPython reads before the code; None: none
    code_in_line: bool = True  # the line form's argument, after the options, is the code it runs
    code_in_first_line: bool = False  # so is the rest of the cell form's ``%%`` line (the body always is)
    returns_value: bool = False  # ``x = %magic expr`` binds x to the value of expr


# The magics whose code runs in the notebook's namespace, as a line magic and as a cell magic.
PYTHON_MAGICS = {
    "time": PythonMagic(returns_value=True),
    "timeit": PythonMagic("n:r:tcp:qov:", code_in_first_line=True),  # %%timeit's line: setup code
    "prun": PythonMagic("D:l:rs:T:q", code_in_first_line=True),  # %%prun's line precedes the body
    # With an option (-b FILE:LINE) IPython rebuilds the code from its words: only the bare form is.
    "debug": PythonMagic(""),
    "capture": PythonMagic(code_in_line=False),  # %%capture [options] [VAR]: the body only
}

# IPython's packaging magics: their arguments name packages (``%pip install torch``), not Python objects.
PACKAGE_MAGICS = frozenset({"pip", "conda", "mamba", "micromamba", "uv"})

_BOUNDARY = "# __torch2ms_cell_{}__"
_MARK = "  # __torch2ms_ipython_{}__"
_STAND_IN_LINE = re.compile(r"^([ \t]*)([^\r\n]*?)  # __torch2ms_ipython_(\d+)__([^\r\n]*)", re.M)
# A line IPython rewrites before Python sees it: a magic, a shell escape, a leading help mark, or an
# assignment from a magic or a shell command (``files = !ls``).
_IPYTHON_LINE = re.compile(r"[ \t]*(?:[%!]|\?|[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*[ \t]*=[ \t]*[%!])")
# A magic line, possibly assigned (``t = %timeit -o f()``), without its indentation.
_MAGIC_LINE = re.compile(r"(?P<lhs>[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*[ \t]*=[ \t]*)?"
                         r"%(?P<cell>%?)(?P<content>.*)", re.S)
# ``obj?`` / ``obj.attr??``: help on a name (a comment ending in "?" is not one).
_HELP_SUFFIX = re.compile(r"[ \t]*[A-Za-z_][\w.]*(?:\(\))?\?\??[ \t]*$")
_LINES = re.compile(r"[^\n]*\n|[^\n]+")  # how Jupyter splits a source into strings
_PY_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # how Python counts lines


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


@dataclass
class _IPythonLine:
    """A line IPython rewrites, set aside while the module is migrated. In the module it stands as
    ``kept + code`` (a magic's Python, migrated in place) or as ``pass; NAME; ...`` (the names a
    masked magic line mentions), followed by its mark; ``original == indent + kept + removed + code``."""

    original: str  # as written, without its newline
    indent: str  # of the stand-in (a continuation line's is that of the line it continues)
    code: str | None = None  # the Python the magic runs, left in the module
    kept: str = ""  # what precedes the magic and stays Python (``x = `` of ``x = %time f()``)
    removed: str = ""  # the magic and its options (``%timeit -n 10 ``), put back afterwards
    names: tuple[str, ...] = ()  # a masked magic line's names, shown to the migration as uses
    magic: bool = False  # a magic line (or the continuation of one), not a shell or help line
    cell_line: int = 0  # 0-based, within its cell

    def body(self) -> str:
        return self.kept + self.code if self.code is not None else "; ".join(("pass", *self.names))

    def stand_in(self, index: int) -> str:
        return self.indent + self.body() + _MARK.format(index)

    def restore(self, indent: str, body: str, rest: str) -> str | None:
        """The line as written, with the migrated code in it; None when the migration changed
        what it should not have."""
        if indent != self.indent:
            return None
        if self.code is None:
            return self.original if not rest and body == self.body() else None
        if not body.startswith(self.kept):
            return None
        return indent + self.kept + self.removed + body[len(self.kept):] + rest


def _mask(source: str, masked: list[_IPythonLine]) -> str | None:
    """The cell's source with IPython-only lines replaced by stand-ins (appended to ``masked``),
    or None when the cell is not Python at all (``%%bash`` ...)."""
    lines = _PY_LINES.findall(source)
    cell_magic = bool(lines) and lines[0].startswith("%%")
    if cell_magic and lines[0][2:].rstrip().partition(" ")[0] not in PYTHON_MAGICS:
        return None
    out = []
    continued: _IPythonLine | None = None  # the masked line a backslash continues
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if continued is not None or (i == 0 and cell_magic) or _IPYTHON_LINE.match(body) or _HELP_SUFFIX.match(body):
            if continued is not None:  # IPython joins it to the line it continues (at its indentation)
                entry = _IPythonLine(body, continued.indent, magic=continued.magic,
                                     names=_names(body) if continued.magic else ())
            else:
                entry = _ipython_line(body, first_of_cell=i == 0 and cell_magic)
            entry.cell_line = i
            out.append(entry.stand_in(len(masked)) + line[len(body):])
            masked.append(entry)
            continued = entry if body.endswith("\\") else None
        else:
            out.append(line)
    return "".join(out)


def _ipython_line(body: str, *, first_of_cell: bool) -> _IPythonLine:
    stripped = body.lstrip(" \t")
    entry = _IPythonLine(body, body[: len(body) - len(stripped)])
    m = _MAGIC_LINE.fullmatch(stripped)
    if m is None or bool(m.group("cell")) != first_of_cell:
        return entry  # a shell or help line, or a "%%" that is not the cell's first line
    entry.magic = True
    content = m.group("content")
    name, space, argument = content.partition(" ")
    magic = PYTHON_MAGICS.get(name)
    if magic is not None and not body.endswith("\\") and \
            (magic.code_in_first_line if first_of_cell else magic.code_in_line):
        start = _code_start(argument, magic.options)
        if start is not None:
            lhs = m.group("lhs") or ""
            code = argument[start:]
            head = stripped[: len(stripped) - len(content)] + name + space + argument[:start]  # lhs, %, name, options
            if lhs and magic.returns_value and _parses(code, "eval"):
                kept, removed = lhs, head[len(lhs):]  # x = %time f(): x is bound to f()'s value
            else:
                kept, removed = "", head  # the magic's own result (a timing, a profile) is not the code's
            if _parses(kept + code, "exec"):
                entry.code, entry.kept, entry.removed = code, kept, removed
                return entry
    entry.names = () if name in PACKAGE_MAGICS else _names(argument)
    return entry


def _code_start(argument: str, options: str | None) -> int | None:
    """Where the code starts in a magic's argument, after the options IPython reads (getopt, as
    IPython's parse_options does on the words); None when there is no code or the options are not
    plain words."""
    words = list(re.finditer(r"\S+", argument))
    if not words:
        return None
    if options is None:
        return words[0].start()
    try:
        _, rest = getopt.getopt([w.group() for w in words], options)
    except getopt.GetoptError:
        return None  # IPython refuses the line too
    taken = len(words) - len(rest)
    if not rest or any(q in w.group() for w in words[:taken] for q in "\"'"):
        return None  # quoted option values: IPython splits them as a shell would
    return words[taken].start()


def _parses(code: str, mode: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code, mode=mode)
    except (SyntaxError, ValueError):
        return False
    return True


def _names(text: str) -> tuple[str, ...]:
    """The Python names a magic's argument mentions (not attributes, keywords or words in strings)."""
    names: list[str] = []
    previous = ""
    try:
        for token in tokenize.generate_tokens(io.StringIO(text.strip()).readline):
            if (token.type == tokenize.NAME and previous != "." and not keyword.iskeyword(token.string)
                    and token.string not in names):
                names.append(token.string)
            previous = token.string
    except (tokenize.TokenError, SyntaxError):
        pass  # an unterminated string or bracket: the names before it
    return tuple(names)


def _ends_with_newline(code: str) -> bool:
    return code.endswith(("\n", "\r"))


def _unmask(text: str, masked: list[_IPythonLine], restored: set[int]) -> str:
    def put_back(m: re.Match) -> str:
        index = int(m.group(3))
        line = masked[index].restore(m.group(1), m.group(2), m.group(4)) if index < len(masked) else None
        if line is None:
            return m.group(0)  # reported as lost by the caller
        restored.add(index)
        return line

    return _STAND_IN_LINE.sub(put_back, text)


# -- the cells as one module ----------------------------------------------------------------


class _Unmappable(Exception):
    """The migrated module could not be split back into its cells."""


@dataclass
class _Part:
    cell: _Cell
    code: str  # the cell's source with its IPython lines masked
    masked: range  # its entries in NotebookModule.masked


@dataclass
class NotebookModule:
    """The code cells of a Python notebook joined into one module, as the kernel runs them, and the
    way back: positions in the module to cells, the migrated module to cell sources."""

    text: str  # the notebook's JSON
    source: str  # the module
    parts: list[_Part]
    starts: list[int]  # the module line where each part starts
    masked: list[_IPythonLine]
    problems: list[str]  # cells left out, and why
    imports: dict[str, tuple[str, ...]] = field(default_factory=dict)  # module-level name -> what it imports

    def where(self, line: int) -> tuple[_Part, int]:
        """The part a module line belongs to, and the line within its cell (1-based)."""
        i = max(bisect.bisect_right(self.starts, line) - 1, 0)
        return self.parts[i], line - self.starts[i] + 1

    def column(self, part: _Part, cell_line: int, column: int) -> int:
        """A module column on a cell line, as a column of the line as written (a magic's code sits
        after the magic in the cell)."""
        for index in part.masked:
            entry = self.masked[index]
            if entry.cell_line == cell_line - 1 and entry.code is not None:
                if column >= len(entry.indent) + len(entry.kept):
                    return column + len(entry.removed)
        return column

    def locate(self, line: int, column: int = 0) -> tuple[int, int, int]:
        """(cell number, line in the cell, column) of a module position."""
        part, cell_line = self.where(line)
        return part.cell.number, cell_line, self.column(part, cell_line, column)

    def finding(self, f: Finding) -> NotebookFinding:
        part, line = self.where(f.line)
        cell = part.cell
        end_line = end_column = None
        if f.end_line is not None and f.end_line >= f.line:
            end_part, end_line = self.where(f.end_line)
            if end_part is not part:
                end_line = None
            elif f.end_column is not None:
                end_column = self.column(part, end_line, f.end_column)
        if cell.elements and 0 < line <= len(cell.line_elements):
            stored_at = self._file_line(cell.elements[cell.line_elements[line - 1]][0])
        else:
            stored_at = self._file_line(cell.span[0])
        return NotebookFinding(f.code, f.severity, line, self.column(part, line, f.column), f.message, f.path,
                               end_line, end_column if end_line is not None else None, cell.number, stored_at)

    def unread_magics(self, config: Config, path: str | None) -> list[Finding]:
        """NB001 for each masked magic line that mentions a name the module imports from torch:
        the line is left as written, and its uses keep that import torch."""
        torch_names = self._torch_names()
        if not torch_names:
            return []
        spec = rules_of(config).findings["NB001"]
        out = []
        for part, start in zip(self.parts, self.starts):
            for index in part.masked:
                entry = self.masked[index]
                used = [n for n in entry.names if n in torch_names] if entry.code is None else []
                if used:
                    out.append(Finding(
                        "NB001", spec.severity, start + entry.cell_line, len(entry.original) - len(entry.original.lstrip()),
                        f"{entry.original.strip()!r}: torch2ms does not read this line as Python; it uses "
                        f"{', '.join(used)} (torch): left as written, and the torch import stays", path))
        return out

    def switched(self, migrated: str) -> list[str]:
        """Names a masked magic line uses whose import the migration changed anyway: the line would
        no longer mean what it did."""
        torch_names = self._torch_names()
        if not torch_names:
            return []
        before, after = self.imports, _module_imports(parse_source(migrated))
        out = []
        for part in self.parts:
            for index in part.masked:
                entry = self.masked[index]
                for name in entry.names if entry.code is None else ():
                    if name in torch_names and before[name] != after.get(name):
                        out.append(f"cell {part.cell.number}: line {entry.cell_line + 1} ({entry.original.strip()!r}) "
                                   f"uses {name}, whose torch import the migration would change; write the line "
                                   f"as Python or convert it by hand")
        return out

    def _torch_names(self) -> set[str]:
        """The names that masked magic lines use and the module imports from torch."""
        used = {name for e in self.masked if e.code is None for name in e.names}
        return {name for name in used if any(map(is_torch, self.imports.get(name, ())))}

    @cached_property
    def _line_starts(self) -> list[int]:
        return line_starts(self.text)

    def _file_line(self, offset: int) -> int:
        """The line of the .ipynb file that holds ``offset``."""
        return bisect.bisect_right(self._line_starts, offset)

    def split(self, module: str) -> list[str]:
        """The cell sources of a migrated module, IPython lines put back."""
        out = []
        pos = 0
        restored: set[int] = set()
        for i, part in enumerate(self.parts):
            boundary = _BOUNDARY.format(i) + "\n"
            at = module.find(boundary, pos)
            if at < 0 or (at > 0 and module[at - 1] != "\n") or module.find(boundary, at + 1) >= 0:
                raise _Unmappable(f"cell {part.cell.number}'s end is lost")
            piece = module[pos:at]
            pos = at + len(boundary)
            if not _ends_with_newline(part.code) and piece.endswith("\n"):
                piece = piece[:-1]  # the newline the join added
            out.append(_unmask(piece, self.masked, restored))
        if module[pos:].strip():
            raise _Unmappable("code after the last cell")
        if len(restored) != len(self.masked):
            raise _Unmappable("an IPython line was lost")
        return out


def read_notebook(text: str, path: str | None = None) -> NotebookModule | None:
    """The code cells of a notebook's JSON text as one module; None when it is not a Python
    notebook or has no code. Raises MigrationError when the text is not a notebook; cells that are
    not Python are left out and listed in ``problems``."""
    try:
        cells = _code_cells(text)
    except (ValueError, StopIteration, IndexError) as exc:
        raise MigrationError(f"not a notebook: {exc}", path) from None
    if not cells:
        return None
    masked: list[_IPythonLine] = []
    parts: list[_Part] = []
    problems: list[str] = []
    imports: dict[str, tuple[str, ...]] = {}
    for cell in cells:
        if not cell.source.strip():
            continue
        start = len(masked)
        code = _mask(cell.source, masked)
        if code is None:
            continue
        try:
            tree = parse_source(code, path)
        except MigrationError as masked_error:
            try:  # a "%" or "!" the masking took for IPython may be Python after all
                tree = parse_source(cell.source, path)
                del masked[start:]
                code = cell.source
            except MigrationError:
                problems.append(f"cell {cell.number}: not Python ({masked_error.line}:{masked_error.column + 1}: "
                                f"{masked_error.message}): left as it is")
                del masked[start:]
                continue
        parts.append(_Part(cell, code, range(start, len(masked))))
        for name, quals in _module_imports(tree).items():  # the cells share one namespace
            imports[name] = imports.get(name, ()) + quals
    chunks = []
    starts = []
    line = 1
    for i, part in enumerate(parts):
        starts.append(line)
        code = part.code if _ends_with_newline(part.code) else part.code + "\n"
        chunks.append(code)
        chunks.append(_BOUNDARY.format(i) + "\n")
        line += len(line_starts(code))  # its lines and the boundary's
    return NotebookModule(text, "".join(chunks), parts, starts, masked, problems, imports)


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def _module_imports(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """What each module-level name is imported as (every import of it, in order): ``import torch.nn
    as nn`` -> nn: torch.nn; ``import torch.nn`` -> torch: torch; ``from torch import nn`` -> nn:
    torch.nn. Functions and classes have their own scopes: their imports are not the module's."""
    out: dict[str, tuple[str, ...]] = {}
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                name, qual = (alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0],) * 2
                out[name] = out.get(name, ()) + (qual,)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    name = alias.asname or alias.name
                    out[name] = out.get(name, ()) + (f"{node.module}.{alias.name}",)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):  # if, try, with, ...
            pending[:0] = [c for c in ast.iter_child_nodes(node) if isinstance(c, _BLOCKS)]
    return out


# -- the migration ---------------------------------------------------------------------------


def migrate_notebook(text: str, *, path: str | None = None, config: Config | None = None) -> NotebookResult:
    """Migrate the code cells of a notebook's JSON text. Raises MigrationError when the text is not
    a notebook; cells that are not Python are left as they are and listed in ``problems``."""
    config = config or Config()
    unchanged = NotebookResult(text, [], False)
    if not rules_of(config).prefilter.matches(text):
        return unchanged
    nb = read_notebook(text, path)
    if nb is None:
        return unchanged
    problems = list(nb.problems)
    if not nb.parts:
        return NotebookResult(text, [], False, problems=problems)

    result = migrate_source(nb.source, path=path, config=config)
    found = sorted([*result.findings, *nb.unread_magics(config, path)], key=lambda f: (f.line, f.column))
    findings = [nb.finding(f) for f in found]
    converted = count_converted(result)
    remaining = list(result.remaining_torch)
    if not result.changed:
        return NotebookResult(text, findings, False, converted, remaining, problems)
    switched = nb.switched(result.code)
    if switched:
        problems += [*switched, "notebook left as it is"]
        return NotebookResult(text, findings, False, 0, remaining, problems)
    try:
        new_sources = nb.split(result.code)
    except _Unmappable as exc:
        problems.append(f"the migrated cells could not be put back ({exc}): notebook left as it is")
        return NotebookResult(text, findings, False, 0, remaining, problems)
    new_text = _replace_sources(text, [(p.cell, new) for p, new in zip(nb.parts, new_sources) if new != p.cell.source])
    return NotebookResult(new_text, findings, new_text != text, converted, remaining, problems)


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
