"""The plan of a migration, as plain data: what changes where, decided by the passes on Python's
``ast`` and carried out by the LibCST transformers (``codemod/transform/``).

Every change names the site it belongs to (the unit of a quick-fix) and the node it applies to by
a ``NodeKey``: the statement that holds the node (numbered in source order) and the node's rank among
that statement's own nodes of the same kind. Both trees list a statement's calls, attributes and
names in the same order, so the key finds the LibCST node without position metadata.

Values the migration writes are ``Template`` strings: Python expressions whose ``{holes}`` stand for
nodes of the tree (``{value}``, the argument being converted; ``{arg:running_mean}``, another
argument; ``{target}``, what an assignment binds) or for names the import plan spells (``{name:k}``).
"""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass, field
from typing import NamedTuple


class Kind(enum.StrEnum):  # a str: keys hash and compare at C speed (the traversal looks up many)
    STATEMENT = "statement"
    CALL = "call"
    ATTRIBUTE = "attribute"
    NAME = "name"


class NodeKey(NamedTuple):
    """A node of the module: the ``ordinal``-th node of ``kind`` among the own nodes (not those of
    nested statements) of statement number ``statement``, in source order. For a statement itself,
    ``kind`` is STATEMENT and ``ordinal`` 0."""

    statement: int
    kind: Kind
    ordinal: int = 0

    def __str__(self) -> str:
        return f"{self.kind.value} {self.ordinal} of statement {self.statement}"


@dataclass
class Spelling:
    """A MindSpore name as the migrated code spells it. ``text`` is decided by the import plan,
    once every site is planned (``from mindspore import nn`` -> ``nn.BatchNorm2d``)."""

    target: str
    text: str | None = None

    def __str__(self) -> str:
        if self.text is None:
            raise RuntimeError(f"{self.target} was never spelled by the import plan")
        return self.text


@dataclass(frozen=True)
class Template:
    """A Python expression or statement with holes: ``1 - ({value})``, ``{target}.set_train()``."""

    text: str
    names: tuple[tuple[str, Spelling], ...] = ()  # hole -> spelled MindSpore name

    def __str__(self) -> str:
        return self.text

    def filled(self, hole: str, text: str) -> "Template":
        """This template with one hole written out as source text (its other holes stay)."""
        out = []
        for literal, name, spec, _conversion in string.Formatter().parse(self.text):
            out.append(literal.replace("{", "{{").replace("}", "}}"))
            if name is not None:
                field = f"{name}:{spec}" if spec else name
                out.append(text if field == hole else "{" + field + "}")
        return Template("".join(out), self.names)

    def display(self, texts: dict[str, str]) -> str:
        """The template with its holes filled by source texts: for people (a quick-fix's title), not
        for files (the transformers fill it with nodes)."""
        filled = dict(texts)
        filled.update((hole, str(spelling)) for hole, spelling in self.names)
        out = []
        for literal, name, spec, _conversion in string.Formatter().parse(self.text):
            out.append(literal)
            if name is not None:
                out.append(filled.get(f"{name}:{spec}" if spec else name, "..."))
        return "".join(out)


# -- changes ------------------------------------------------------------------------------------
# Each kind of change is consumed by one transformer: see codemod/transform/__init__.py.


@dataclass
class Change:
    site: str  # the id of the site it belongs to
    key: NodeKey


@dataclass
class ReplaceReference(Change):
    """A name or dotted name that means a torch object now means a MindSpore one."""

    spelling: Spelling | str
    written: str = ""  # as the source spells it


@dataclass
class Argument:
    """What happens to one argument of a call, in source order."""

    param: str  # the torch parameter it binds to
    written: str = ""  # the argument as written (``momentum=0.1``)
    written_value: str = ""  # its value as written (``0.1``)
    drop: bool = False
    keyword: str | None = None  # the keyword to spell (None: as written); in a ReplaceCall, its hole
    positional: bool = False  # a keyword argument passed by position (MindSpore's ``*size`` takes no keyword)
    value: Template | None = None  # the value converted: ``{value}`` is the value as written
    derived: Template | None = None  # a new value, from other arguments (``{arg:running_mean}``)


@dataclass
class ChangeArguments(Change):
    """The arguments of a call mapped to MindSpore's: dropped, given keywords, converted, added.
    The first ``skip`` arguments are not the callee's own (``self`` of ``Base.__init__(self, ...)``,
    the class of ``partial(cls, ...)``)."""

    arguments: tuple[Argument, ...]
    added: tuple[tuple[str, Template], ...] = ()
    skip: int = 0
    # Arguments ``pack[0]`` to ``pack[1] - 1`` (torch's ``*size``) become one tuple argument, for a
    # MindSpore parameter that takes the sequence whole (``zeros(2, 3)`` -> ``zeros((2, 3))``).
    pack: tuple[int, int] | None = None


@dataclass
class ReplaceCall(Change):
    """The call replaced by an expression (``x.size(0)`` -> ``x.shape[0]``, ``x.contiguous()`` ->
    ``x``, ``x.relu()`` -> ``ops.relu(x)``). In ``template``, ``{receiver}`` is what a method is called
    on and ``{arg:<name>}`` the argument planned under that name (``Argument.keyword``, or a keyword
    of ``added``), converted as ``Argument`` says; the call's own arguments are otherwise gone."""

    template: Template
    arguments: tuple[Argument, ...] = ()
    added: tuple[tuple[str, Template], ...] = ()
    receiver: str = ""  # what the method is called on, as written (for people)


@dataclass
class ChainCall(Change):
    """The call is followed by a method call on its result: ``nn.BatchNorm2d(4)`` ->
    ``nn.BatchNorm2d(4).set_train()`` (a construction whose binding no statement can follow)."""

    method: str
    arguments: Template | None = None  # its one argument, if any


@dataclass
class SetMode(Change):
    """``x.train(...)``/``x.eval()`` -> ``x.set_train(...)``: ``mode`` True writes ``set_train()``,
    False ``set_train(False)``, None keeps the arguments (``x.train(flag)``)."""

    mode: bool | None


@dataclass
class RenameAttribute(Change):
    """``x.running_mean`` -> ``x.moving_mean``; ``new`` may be a dotted path (``bn2d.gamma``)."""

    new: str


@dataclass
class RenameDefinition(Change):
    """``def forward`` -> ``def construct``."""

    new: str


@dataclass
class InsertStatement(Change):
    """A statement after the statement ``key``: on a line of its own when that statement has its
    line to itself, else after it on the same line (``; ``). ``{target}`` is the statement's
    assignment target."""

    template: Template


@dataclass
class ReplaceStatement(Change):
    """The statement ``key`` replaced by ``statements`` (none: removed, or ``pass`` where a
    statement is needed)."""

    statements: tuple[Template, ...]


@dataclass
class KeepImportNames(Change):
    """An import statement loses some of its names (``keep`` is one flag per name, in order)."""

    keep: tuple[bool, ...]


@dataclass
class Marker(Change):
    """A comment at the end of the line of statement ``key`` (of its header, for a compound one)."""

    text: str


@dataclass
class Plan:
    """Everything a migration changes, in the order the passes planned it."""

    changes: list[Change] = field(default_factory=list)
    # Where the keys' statements end: statement n holds statements n+1 .. ends[n]-1 (the transformers
    # skip whole blocks that nothing changes); and, per keyed node, how many calls, attributes and
    # names its subtree holds.
    statement_ends: list[int] = field(default_factory=list)
    subtrees: dict[NodeKey, tuple[int, int, int]] = field(default_factory=dict)

    def for_sites(self, sites: set[str] | None) -> "Plan":
        if sites is None:
            return self
        return Plan([c for c in self.changes if c.site in sites], self.statement_ends, self.subtrees)


def short(text: str, limit: int = 80) -> str:
    """Source text on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(changes: list[Change], target: str | None = None, subject: str | None = None) -> str:
    """What changes do, in one line for people (a quick-fix's title, a hint in the editor):
    ```nn.BatchNorm2d(3, momentum=0.1)`: `momentum=0.1` -> `momentum=0.9``. ``target``: what an
    assignment binds, for inserted statements; ``subject``: the source text the changes are in."""
    parts = []
    for change in changes:
        if isinstance(change, ReplaceReference):
            new = str(change.spelling)
            if change.written and new != change.written:
                parts.append(f"`{short(change.written)}` -> `{new}`")
        elif isinstance(change, ChangeArguments):
            texts = {f"arg:{a.param}": a.written_value for a in change.arguments}
            for a in change.arguments:
                if a.drop:
                    parts.append(f"`{short(a.written)}` dropped")
                    continue
                value = a.written_value
                if a.value is not None:
                    value = a.value.display({"value": a.written_value, **texts})
                elif a.derived is not None:
                    value = a.derived.display(texts)
                written_keyword = a.written.split("=", 1)[0].strip() if a.written != a.written_value else None
                keyword = a.keyword or written_keyword
                new = f"{keyword}={value}" if keyword else value
                if new != a.written:
                    parts.append(f"`{short(a.written)}` -> `{short(new)}`")
            parts += [f"`{keyword}={t.display(texts)}` added" for keyword, t in change.added]
        elif isinstance(change, ReplaceCall):
            texts = {f"arg:{a.keyword}": a.value.display({"value": a.written_value}) if a.value else a.written_value
                     for a in change.arguments if not a.drop}
            texts.update((f"arg:{keyword}", t.display(texts)) for keyword, t in change.added)
            parts.append(f"-> `{short(change.template.display({'receiver': change.receiver, **texts}))}`")
        elif isinstance(change, InsertStatement):
            parts.append(f"then `{change.template.display({'target': target or '...'})}`")
        elif isinstance(change, ChainCall):
            argument = change.arguments.display({}) if change.arguments else ""
            parts.append(f"`.{change.method}({argument})` chained")
        elif isinstance(change, SetMode):
            parts.append("`set_train()`" if change.mode else "`set_train(False)`" if change.mode is False
                         else "`train` -> `set_train`")
        elif isinstance(change, RenameAttribute):
            parts.append(f"`.{change.new}`")
        elif isinstance(change, RenameDefinition):
            parts.append(f"`def {change.new}`")
    if subject and parts:
        return f"`{short(subject)}`: " + "; ".join(parts)
    return "; ".join(parts)
