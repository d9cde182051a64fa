"""The language server's core, without pygls: analyse a document, and compute the text a quick-fix or
fix-all produces. Everything here calls ``migrate_source``, so an editor fix is the CLI's fix.

A quick-fix for one site cannot always apply that site alone: some sites are only detectable while
the code is still torch (``m = nn.BatchNorm2d(3)`` then ``m(x)`` plans a construction *and* an
inserted ``m.set_train()``; once the construction is MindSpore, nothing says ``m`` needs
``set_train``). The engine groups the sites it knows to depend on each other (``Config(only=...)``
applies a whole group); on top of that, a quick-fix here applies the *closure* of its site: the
site plus every site the re-analysis of the fixed text no longer finds, repeated until nothing more
disappears. So a dependency no pass declared still cannot make the quick-fixes, applied one by one,
end anywhere but where fix-all does.
"""

from __future__ import annotations

import bisect
import difflib
from dataclasses import dataclass, field, replace

from ..engine import Planned, plan_source
from ..model import Config, MigrationError, Site
from ..source import line_starts

# -- positions -------------------------------------------------------------------------------------


class Lines:
    """Line starts of a text, and conversions between string offsets, the engine's positions (line
    1-based, column in code points) and LSP positions (line 0-based, column in the client's units)."""

    def __init__(self, text: str, encoding: str = "utf-16"):
        self.text = text
        self.starts = line_starts(text)
        self.encoding = encoding
        # migrate_source strips a BOM before it analyses: its columns on line 1 start after it.
        self.bom = 1 if text.startswith("\ufeff") else 0

    def offset(self, line: int, column: int) -> int:
        """String offset of an engine position."""
        start = self.starts[min(line, len(self.starts)) - 1]
        return start + column + (self.bom if line == 1 else 0)

    def _units(self, segment: str) -> int:
        if self.encoding == "utf-32" or segment.isascii():
            return len(segment)
        if self.encoding == "utf-8":
            return len(segment.encode("utf-8"))
        return len(segment.encode("utf-16-le")) // 2

    def position(self, offset: int) -> tuple[int, int]:
        """LSP (line, character) of a string offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        return line, self._units(self.text[self.starts[line]:offset])

    def engine_position(self, line: int, column: int) -> tuple[int, int]:
        """LSP (line, character) of an engine position."""
        return self.position(self.offset(line, column))

    def offset_of_position(self, line: int, character: int) -> int:
        """String offset of an LSP position (clamped to the text, as the protocol asks)."""
        if line >= len(self.starts):
            return len(self.text)
        start = self.starts[max(line, 0)]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        text = self.text[start:end].rstrip("\r\n")
        if self.encoding == "utf-32" or text.isascii():
            return start + min(character, len(text))
        units = 0
        for i, ch in enumerate(text):
            if units >= character:
                return start + i
            units += self._units(ch)
        return start + len(text)


# -- analysis --------------------------------------------------------------------------------------


def converted(site: Site) -> bool:
    return site.converted and site.kind != "imports"


def fixable(site: Site) -> bool:
    """A site a quick-fix applies: converted, with changes of its own (a reference whose text stays
    while its import changes still has its change; a call through a converted ``functools.partial``
    has none: the partial's fix is the one that changes it)."""
    return converted(site) and bool(site.changes)


@dataclass
class Analysis:
    """One version of a document, analysed: the planned migration (the front stage: findings and
    sites, no LibCST), or why it could not be analysed. The migrated text, which takes LibCST, is
    made when a fix asks for it, from a LibCST tree parsed once per version."""

    text: str
    result: Planned | None = None
    error: Exception | None = None
    _module: object = field(default=None, repr=False)
    _migrated: str | None = field(default=None, repr=False)

    def module(self):
        """The LibCST tree of the text (without its BOM), parsed once."""
        if self._module is None:
            import libcst

            body = self.text[1:] if self.text.startswith("\ufeff") else self.text
            self._module = libcst.parse_module(body)
        return self._module

    def migrated(self) -> str:
        """The whole document migrated (fix-all)."""
        if self._migrated is None:
            self._migrated = self.result.migrate(self.module()).code
        return self._migrated

    @property
    def sites(self) -> list[Site]:
        """The sites a quick-fix is offered for."""
        return [s for s in self.result.sites if fixable(s)] if self.result is not None else []

    def site(self, site_id: str) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)


def analyse(text: str, config: Config, path: str | None = None) -> Analysis:
    try:
        return Analysis(text, plan_source(text, path=path, config=config))
    except MigrationError as exc:
        return Analysis(text, error=exc)


# -- fixes -----------------------------------------------------------------------------------------


def quick_fix(analysis: Analysis, site_id: str, config: Config) -> str:
    """The text after the quick-fix for one site: its closure applied (see the module docstring)."""
    closure = {site_id}
    others = [s for s in analysis.sites if s.id != site_id]
    while True:
        path = analysis.result.path if analysis.result is not None else None
        selected = plan_source(analysis.text, path=path, config=replace(config, only=frozenset(closure)))
        fixed = selected.migrate(analysis.module()).code
        try:
            after = plan_source(fixed, path=path, config=config)
        except MigrationError:  # cannot happen for the engine's own output; keep what was asked
            return fixed
        lost = _lost_sites([s for s in others if s.id not in closure], analysis.text, fixed, after.sites)
        if not lost:
            return fixed
        closure.update(s.id for s in lost)


def _lost_sites(before: list[Site], old: str, new: str, after: list[Site]) -> list[Site]:
    """The sites of ``before`` (in ``old``) that the analysis of ``new`` no longer finds. A site is
    found again when one of the same kind and rule starts where its start moved to; a site whose start
    was itself rewritten is matched by its original text instead."""
    old_lines, new_lines = Lines(old), Lines(new)
    moved = _offset_mapper(old, new)
    found_at = {(s.kind, s.rule, new_lines.offset(s.line, s.column)) for s in after if converted(s)}
    found_text = {}
    for s in after:
        if converted(s):
            found_text[(s.kind, s.rule, s.original)] = found_text.get((s.kind, s.rule, s.original), 0) + 1
    lost = []
    for s in before:
        at = moved(old_lines.offset(s.line, s.column))
        if at is not None:
            if (s.kind, s.rule, at) not in found_at:
                lost.append(s)
            continue
        key = (s.kind, s.rule, s.original)
        if found_text.get(key):
            found_text[key] -= 1
        else:
            lost.append(s)
    return lost


def _offset_mapper(old: str, new: str):
    """A function from offsets in ``old`` to offsets in ``new`` for text the change left alone (None
    for text it rewrote): a line diff, refined by a character diff inside each changed block."""
    old_split = old.splitlines(keepends=True)
    new_split = new.splitlines(keepends=True)
    old_starts = _starts(old_split)
    new_starts = _starts(new_split)
    equal: list[tuple[int, int, int]] = []  # (old start, old end, new start) of unchanged text
    for tag, i1, i2, j1, j2 in _line_opcodes(old_split, new_split):
        a, b = old_starts[i1], old_starts[i2]
        c, d = new_starts[j1], new_starts[j2]
        if tag == "equal":
            equal.append((a, b, c))
        elif tag == "replace":
            chars = difflib.SequenceMatcher(None, old[a:b], new[c:d], autojunk=False)
            for block in chars.get_matching_blocks():
                if block.size:
                    equal.append((a + block.a, a + block.a + block.size, c + block.b))
    keys = [e[0] for e in equal]

    def moved(offset: int) -> int | None:
        i = bisect.bisect_right(keys, offset) - 1
        if i >= 0:
            a, b, c = equal[i]
            if offset < b:
                return c + offset - a
        return None

    return moved


def _line_opcodes(old: list[str], new: list[str]):
    """difflib's opcodes between two lists of lines, fast on model files, whose lines repeat a lot:
    a first pass treats very common lines as junk (linear in practice, but it merges the blocks
    around them), a second one splits each merged block exactly."""
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        if tag != "replace" or i2 - i1 == 1 or j2 - j1 == 1:
            yield tag, i1, i2, j1, j2
            continue
        inner = difflib.SequenceMatcher(None, old[i1:i2], new[j1:j2], autojunk=False)
        for tag2, k1, k2, l1, l2 in inner.get_opcodes():
            yield tag2, i1 + k1, i1 + k2, j1 + l1, j1 + l2


def _starts(lines: list[str]) -> list[int]:
    out = [0]
    for line in lines:
        out.append(out[-1] + len(line))
    return out


# -- text edits ------------------------------------------------------------------------------------


@dataclass
class TextChange:
    """Replace [start, end) of the old text by ``text`` (string offsets)."""

    start: int
    end: int
    text: str = field(default="")


def text_changes(old: str, new: str) -> list[TextChange]:
    """The changed line blocks between two texts: small edits an editor applies without moving the
    rest of the document (and without losing the cursor or the undo history)."""
    old_split = old.splitlines(keepends=True)
    new_split = new.splitlines(keepends=True)
    old_starts, new_starts = _starts(old_split), _starts(new_split)
    changes = []
    for tag, i1, i2, j1, j2 in _line_opcodes(old_split, new_split):
        if tag != "equal":
            changes.append(TextChange(old_starts[i1], old_starts[i2], new[new_starts[j1]:new_starts[j2]]))
    return changes


def apply_changes(old: str, changes: list[TextChange]) -> str:
    out, pos = [], 0
    for c in sorted(changes, key=lambda c: c.start):
        out.append(old[pos:c.start])
        out.append(c.text)
        pos = c.end
    out.append(old[pos:])
    return "".join(out)
