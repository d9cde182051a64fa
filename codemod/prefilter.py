"""Which files are worth parsing: a look at the text that never misses a file the engine would change.

Parsing is most of a run's cost, and many files that mention a trigger word (``LayerNorm``) do not
reference torch's: timm defines and imports its own. The engine finds torch's layers only through
torch imports (tests/test_prefilter.py checks each way), so a trigger word can matter only

- after a dot (``nn.LayerNorm``, ``torch.nn.modules.batchnorm.BatchNorm2d``), or in a string
  (``getattr(nn, "LayerNorm")``);
- as a name that a ``from torch... import`` statement imports, or under ``from torch... import *``;
- anywhere in a file that mentions MindSpore: a migration part way through, which the engine takes
  up whatever spells the layer.

Where the text leaves a doubt (a comment or a line continuation in the way), the file is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class Prefilter:
    def __init__(self, words: Iterable[str], roots: Iterable[str]):
        # Plain alternatives: the regex engine scans for them fast (a \b in front would make it try
        # every position); word boundaries are checked on the few matches.
        alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        self.words = re.compile(alternation)
        roots_alternation = "|".join(re.escape(r) for r in sorted(roots))
        self._from_import = re.compile(rf"\bfrom[ \t]+(?:{roots_alternation})\b[\w. \t]*\bimport\b")

    def matches(self, text: str) -> bool:
        """Whether ``text`` (a module, or a notebook's JSON) may reference a layer the rules know."""
        occurrences = [m.start() for m in self.words.finditer(text) if _is_word(text, m.start(), m.end())]
        if not occurrences:
            return False
        if "mindspore" in text:
            return True
        if any(_after_dot_or_quote(text, at) for at in occurrences):
            return True
        for start, end in self._torch_from_imports(text):
            names = text[start:end]
            if "*" in names or "\\" in names or any(start <= at < end for at in occurrences):
                return True  # a star import, a continued line (or an escaped one in a notebook)
        return False

    def _torch_from_imports(self, text: str) -> list[tuple[int, int]]:
        """The spans of the names that ``from torch... import`` statements import."""
        spans = []
        for m in self._from_import.finditer(text):
            start = m.end()
            while start < len(text) and text[start] in " \t":
                start += 1
            if text.startswith("(", start):
                end = text.find(")", start)
            else:
                end = min((i for i in (text.find(c, start) for c in "\r\n;") if i >= 0), default=len(text))
            spans.append((start, len(text) if end < 0 else end))
        return spans


class _PassEverything:
    def matches(self, text: str) -> bool:
        return True


PASS_EVERYTHING = _PassEverything()


def _is_word(text: str, start: int, end: int) -> bool:
    return not (start > 0 and _identifier_char(text[start - 1])) and not (end < len(text) and _identifier_char(text[end]))


def _identifier_char(c: str) -> bool:
    # ASCII only: a non-ASCII neighbour counts as a boundary (a doubt lets the file through).
    return c.isascii() and (c.isalnum() or c == "_")


def _after_dot_or_quote(text: str, at: int) -> bool:
    """Whether the word at ``at`` follows a dot or a quote, looking back over whitespace and line
    breaks (inside brackets a name may follow its dot on a later line)."""
    i = at - 1
    while i >= 0:
        c = text[i]
        if c in ".'\"":
            return True
        if c in " \t\f\\":
            i -= 1
            continue
        if c in "\r\n":
            line_start = max(text.rfind("\n", 0, i), text.rfind("\r", 0, i)) + 1
            if "#" in text[line_start:i]:
                return True  # a comment may stand between the dot and the name: do not guess
            i -= 1
            continue
        return False
    return False
