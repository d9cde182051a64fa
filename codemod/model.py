"""The data the package hands around: what a migration is asked to do (``Config``), the places it
changes (``Site``), what it gives back (``MigrationResult``) and why it could not (``MigrationError``).
This module depends on nothing else of the package."""

from __future__ import annotations

import ast
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .findings import Finding

if TYPE_CHECKING:
    from .plan import Change
    from .ruleset import RuleSet


@dataclass(frozen=True)
class Config:
    """What a migration should do. ``only`` restricts the edits to the sites with these ids (the
    language server's quick-fix for one site); findings are always reported for every site."""

    markers: bool = True
    mindspore_version: str | None = None
    rules: RuleSet | None = None
    only: frozenset[str] | None = None
    # Which rules run and which findings are reported (ruleset.RuleSet.selected): groups, families,
    # torch names, finding codes. Empty select: everything.
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    # The project the file belongs to (codemod.facts.project.Project): what its imports from the
    # other files of the project are. None: the file is read alone.
    project: object | None = None


class SiteKind(enum.StrEnum):
    CONSTRUCT = "construct"  # a call that builds a layer
    FUNCTION = "function"  # a call of a torch function
    METHOD = "method"  # a tensor method called on a value known to be a tensor
    PARTIAL = "partial"  # functools.partial(layer, ...)
    REFERENCE = "reference"  # a torch class named where it is not called
    MODE = "mode"  # x.train() / x.eval()
    SET_TRAIN = "set_train"  # an inserted x.set_train()
    SKELETON = "skeleton"  # forward -> construct
    ATTRIBUTE = "attribute"  # running_mean -> moving_mean, ...
    IMPORTS = "imports"  # the file's import statements


@dataclass
class Site:
    """One place the tool changes (or would change, or cannot change): the unit of a quick-fix."""

    id: str
    kind: SiteKind
    line: int
    column: int
    end_line: int
    end_column: int
    rule: str | None = None
    converted: bool = True
    message: str = ""
    original: str = ""
    replacement: str | None = None
    target: str | None = None  # the name a construction is assigned to, if any
    changes: list[Change] = field(default_factory=list, repr=False)  # its part of the plan
    # ids of the nodes whose sites this one relies on (see facts/inference.py: "origin")
    requires: set = field(default_factory=set, repr=False)
    # Planning state, dropped when the migration is done: the node the site is about, and the
    # (code, message, node) of a marker comment to add.
    node: ast.AST | None = field(default=None, repr=False)
    marker: tuple | None = field(default=None, repr=False)


@dataclass
class MigrationResult:
    code: str
    findings: list[Finding]
    changed: bool
    sites: list[Site] = field(default_factory=list)
    remaining_torch: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def converted_sites(self) -> list[Site]:
        return [s for s in self.sites if s.converted]


class MigrationError(Exception):
    """The source could not be migrated at all (it does not parse). Nothing was changed."""

    def __init__(self, message: str, path: str | None = None, line: int = 1, column: int = 0):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f"{self.path}:" if self.path else ""
        return f"{where}{self.line}:{self.column + 1}: {self.message}"
