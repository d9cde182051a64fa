"""Imports: decide how each converted reference spells its MindSpore name, in the style the file
already uses, then edit the import statements to match.

For each torch import (an "import group": the bindings of one name in one scope):
- if every use of it was converted, its import is swapped for the MindSpore counterpart under the
  same name where possible (``from torch import nn`` -> ``from mindspore import nn``), so the
  references keep their text;
- otherwise it stays, and the converted references use an existing MindSpore import or a new one
  placed right after it, under a name that clashes with nothing (``from mindspore import nn as ms_nn``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from ..facts.references import ImportGroup, is_mindspore
from ..facts.scopes import Binding
from ..migration import Migration, SpelledName
from ..plan import (
    InsertStatement,
    KeepImportNames,
    ReplaceReference,
    ReplaceStatement,
    Template,
)


@dataclass
class MsImport:
    """A MindSpore binding a reference can be spelled through: existing or planned."""

    name: str
    qual: str
    style: str = "import"
    anchor: ast.stmt | None = None  # planned: placed after this statement
    replaces: Binding | None = None  # planned swap: takes the place of this torch alias
    existing: bool = False
    binding: Binding | None = None  # existing: the import binding it is
    used: bool = False
    alias_written: bool = False  # keep "as name" even where it repeats the name (the file wrote it so)

    def covers(self, target: str) -> bool:
        return target == self.qual or target.startswith(self.qual + ".")

    def spell(self, target: str) -> str:
        return self.name + target[len(self.qual):]

    def statement(self) -> str:
        if self.style == "from" and "." in self.qual:
            module, last = self.qual.rsplit(".", 1)
            alias = self.name != last or self.alias_written
            return f"from {module} import {last}" + (f" as {self.name}" if alias else "")
        return f"import {self.qual}" + (f" as {self.name}" if self.name != self.qual or self.alias_written else "")


@dataclass
class StatementPlan:
    stmt: ast.stmt
    removed: set[int] = field(default_factory=set)  # id(alias) of torch aliases to remove
    swapped: list[MsImport] = field(default_factory=list)
    added: list[MsImport] = field(default_factory=list)


def plan_imports(mig: Migration) -> None:
    _share_import_statements(mig)
    active = [c for c in mig.spelled if mig.active(c.site)]
    if not active:
        return
    used_names = set(mig.index.names) | set(mig.index.loads)
    existing = [MsImport(b.name, b.qual, b.style or "import", existing=True, binding=b)
                for b in mig.index.imports if is_mindspore(b.qual) and b.scope is mig.index.module_scope]
    site = mig.site_at("imports", 1, 0)
    planned: list[MsImport] = []
    plans: dict[int, StatementPlan] = {}

    def plan_for(stmt: ast.stmt) -> StatementPlan:
        return plans.setdefault(id(stmt), StatementPlan(stmt))

    active_nodes = {id(c.ref.node) for c in active if c.ref is not None}
    by_group: dict[int, list[SpelledName]] = {}
    for c in active:
        by_group.setdefault(id(c.group), []).append(c)
    groups = sorted((g for g in mig.import_groups if id(g) in by_group),
                    key=lambda g: (g.anchor.lineno, g.anchor.col_offset))
    root = next((g for g in sorted(mig.import_groups, key=lambda g: (g.anchor.lineno, g.anchor.col_offset))
                 if g.bindings and g.star is None and _counterpart(mig, g) == "mindspore"), None)
    for group in groups:
        convs = by_group[id(group)]
        counterpart = _counterpart(mig, group)
        # Every use converted: the torch import is no longer needed (a star import stays regardless).
        every_use = group.ambiguous_uses == 0 and all(id(r.node) in active_nodes for r in group.refs)
        removable = bool(group.bindings) and every_use
        if removable:
            for b in group.bindings:
                plan_for(b.stmt).removed.add(id(b.node))
        # A reference is spelled through its own import's counterpart whenever that covers it, so its
        # spelling depends only on that import, not on which other sites were converted before:
        # converting a file in steps ends where converting it at once does.
        own = None
        if counterpart is not None and group.star is not None:
            # A name from `from torch.nn import *`: an explicit import after the star shadows it.
            name = group.name if every_use else _fresh(_prefixed(group.name), used_names)
            own = next((m for m in existing if m.qual == counterpart and m.name == name), None) or \
                MsImport(name, counterpart, "from", alias_written=False)
            used_names.add(own.name)
        elif counterpart is not None:
            if removable:
                own = _settle_swap(mig, site, group, counterpart, existing, used_names, plan_for)
            else:
                own = _echo(group, counterpart, existing, used_names)
            used_names.add(own.name)
        for c in convs:
            if own is not None and own.covers(c.target):
                choice = own
            else:
                choice = next((m for m in existing + planned if m.covers(c.target)), None)
            if choice is None:
                # `import mindspore` goes where `import torch` stands (its swap stands there once
                # torch is gone), whichever site asks for it first: converting a file in steps ends
                # where converting it at once does.
                home = root if root is not None else group
                choice = _new_import(home, None, c.target, used_names)
                used_names.add(choice.name)
                planned.append(choice)
                _place(choice, home, plan_for)
            choice.used = True
            c.spelling.text = choice.spell(c.target)
        if own is not None and own.used and not own.existing:
            planned.append(own)
            if own.replaces is not None:
                plan_for(group.first.stmt).swapped.append(own)
            elif group.star is not None:
                _place_after_star(mig, own, group, existing, plan_for)
            else:
                _place(own, group, plan_for)

    for plan in plans.values():
        _edit_statement(mig, site, plan)


def _share_import_statements(mig: Migration) -> None:
    """Sites whose torch names one import statement brings in (``from torch import nn, tensor``) are
    converted together: each rewrites that statement, and rewriting it name by name would leave its
    MindSpore imports in another order than rewriting it at once."""
    by_statement: dict[int, list] = {}
    for c in mig.spelled:
        if c.ref is not None and c.ref.group.bindings and c.site.node is not None:
            by_statement.setdefault(id(c.ref.group.first.stmt), []).append(c)
    for spelled in by_statement.values():
        groups = {id(c.ref.group) for c in spelled}
        if len(groups) > 1:
            nodes = {id(c.site.node) for c in spelled}
            for c in spelled:
                c.site.requires |= nodes


def _counterpart(mig: Migration, group: ImportGroup) -> str | None:
    """The MindSpore name that stands where the torch import's name stood."""
    qual = mig.rules.canonical(group.qual)
    rules = mig.rules
    if qual in rules.counterparts:
        return rules.counterparts[qual]
    mapped = rules.mapped(qual) or rules.dtypes.get(qual)
    if mapped:
        return mapped
    return None


def _settle_swap(mig: Migration, site, group: ImportGroup, counterpart: str, existing: list[MsImport],
                 used: set[str], plan_for) -> MsImport:
    """The MindSpore import that takes the place of a torch import nothing uses any more.

    Migrating a file in steps (one quick-fix at a time) must end where migrating it at once does. A
    step that converted some uses of ``nn`` while others remained added ``import mindspore.nn as
    ms_nn`` next to the torch import; when the last use is converted, that import collapses back into
    the one a single run writes (``import mindspore.nn as nn``), and its uses are renamed.
    """
    same_target = {m.name for m in existing if m.qual in (counterpart, counterpart.split(".", 1)[0])}
    natural = _swap(group, counterpart, used - same_target)
    twin = next((m for m in existing if m.qual == natural.qual and m.name == natural.name), None)
    if twin is not None:
        return twin  # already imported under the very name a single run would give it
    step = _new_import(group, counterpart, counterpart, used - same_target)
    echo = next((m for m in existing if m.qual == step.qual and m.name == step.name and m.binding is not None), None)
    if echo is None or natural.name in used - {group.name, echo.name}:
        return _swap(group, counterpart, used)
    existing.remove(echo)
    plan_for(echo.binding.stmt).removed.add(id(echo.binding.node))
    for node, scope in mig.index.loads.get(echo.name, ()):
        found = scope.resolve(echo.name)
        if found is not None and echo.binding in found[1]:
            mig.change(site, ReplaceReference(site.id, mig.key(node), natural.name))
    natural.used = True  # the echo's uses are its now, whatever this run converts
    return natural


def _echo(group: ImportGroup, counterpart: str, existing: list[MsImport], used: set[str]) -> MsImport:
    """The import that stands next to a torch import still in use: the one an earlier step wrote,
    if it is there, else a new one under a name that clashes with nothing."""
    same_target = {m.name for m in existing if m.qual in (counterpart, counterpart.split(".", 1)[0])}
    step = _new_import(group, counterpart, counterpart, used - same_target)
    earlier = next((m for m in existing if m.qual == step.qual and m.name == step.name), None)
    return earlier or _new_import(group, counterpart, counterpart, used)


def _place(new: MsImport, group: ImportGroup, plan_for) -> None:
    new.anchor = group.anchor
    plan_for(group.anchor).added.append(new)


def _place_after_star(mig: Migration, new: MsImport, group: ImportGroup, existing: list[MsImport], plan_for) -> None:
    """Names of a star import get a line each after it, in the order of their text, among the lines
    an earlier step wrote there: converting a file in steps ends where converting it at once does."""
    text = new.statement()
    anchor = group.anchor
    written = {id(m.binding.stmt) for m in existing if m.binding is not None}
    body = next((value for _field, value in ast.iter_fields(mig.parent(anchor))
                 if isinstance(value, list) and any(item is anchor for item in value)), [anchor])
    for stmt in body[[id(item) for item in body].index(id(anchor)) + 1:]:
        if id(stmt) not in written or ast.unparse(stmt) > text:
            break
        anchor = stmt
    new.anchor = anchor
    added = plan_for(anchor).added
    added.insert(next((i for i, m in enumerate(added) if m.statement() > text), len(added)), new)


def _fresh(preferred: str, used: set[str]) -> str:
    name, n = preferred, 1
    while name in used:
        n += 1
        name = f"{preferred}{n}"
    return name


def _swap(group: ImportGroup, counterpart: str, used: set[str]) -> MsImport:
    b = group.first
    alias: ast.alias = b.node
    style = b.style or "import"
    if style == "import":
        if alias.asname:
            return MsImport(group.name, counterpart, "import", replaces=b, alias_written=True)
        root = counterpart.split(".", 1)[0]
        name = root if root not in used else _fresh("ms", used)
        return MsImport(name, root if name == root else counterpart, "import", replaces=b)
    last = counterpart.rsplit(".", 1)[-1]
    if alias.asname:
        return MsImport(group.name, counterpart, "from", replaces=b, alias_written=True)
    if last == group.name or last not in used:
        return MsImport(last, counterpart, "from", replaces=b)
    return MsImport(_fresh(_prefixed(last, module=last.islower()), used), counterpart, "from", replaces=b)


def _new_import(group: ImportGroup, counterpart: str | None, target: str, used: set[str]) -> MsImport:
    style = group.first.style if group.bindings else "import"
    if counterpart is None or not (target == counterpart or target.startswith(counterpart + ".")):
        counterpart, style = "mindspore", "import"
    if style == "import" and "." not in counterpart:
        name = counterpart if counterpart not in used else _fresh("ms", used)
        return MsImport(name, counterpart, "import")
    last = counterpart.rsplit(".", 1)[-1]
    # A module alias gets ms_<name> (ms_nn, ms_F); a class gets Ms<Name> (MsBatchNorm2d).
    module = (group.first.style if group.bindings else "import") == "import" or counterpart.rsplit(".", 1)[-1].islower()
    preferred = last if last != group.name and last not in used else _prefixed(group.name, module)
    return MsImport(_fresh(preferred, used), counterpart, style)


def _prefixed(name: str, module: bool = False) -> str:
    return ("Ms" + name) if name[:1].isupper() and not module else ("ms_" + name)


# ---------------------------------------------------------------------------------------------
# Editing import statements


def _edit_statement(mig: Migration, site, plan: StatementPlan) -> None:
    stmt = plan.stmt
    keep = tuple(id(a) not in plan.removed for a in stmt.names)
    new_lines = [Template(m.statement()) for m in plan.swapped + plan.added]
    key = mig.key(stmt)
    if any(keep):
        if not all(keep):
            mig.change(site, KeepImportNames(site.id, key, keep))
        for line in new_lines:
            mig.change(site, InsertStatement(site.id, key, line))
    else:  # nothing of it is left: its counterparts take its place (or it goes)
        mig.change(site, ReplaceStatement(site.id, key, tuple(new_lines)))
