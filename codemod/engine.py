"""The pure core: ``migrate_source``. Every front end (CLI, pre-commit, language server, verify)
calls it, so a fix proven in one is the fix shipped in all."""

from __future__ import annotations

import ast
import functools
import gc
import warnings
from dataclasses import dataclass, field
from typing import Callable

from .analysis import Index, TorchRef, torch_references
from .findings import Finding
from .ruleset import LayerRule, RuleSet, default_rules, parse_version
from .source import Edit, EditConflict, SourceText, apply_edits, rewrite


@dataclass(frozen=True)
class Config:
    """What a migration should do. ``only`` restricts the edits to the sites with these ids (the
    language server's quick-fix for one site); findings are always reported for every site."""

    markers: bool = True
    mindspore_version: str | None = None
    rules: RuleSet | None = None
    only: frozenset[str] | None = None

    @property
    def ruleset(self) -> RuleSet:
        return self.rules or default_rules()

    def target_version(self) -> tuple[int, ...]:
        if self.mindspore_version:
            return parse_version(self.mindspore_version)
        return self.ruleset.newest_version()


@dataclass
class Site:
    """One place the tool changes (or would change, or cannot change): the unit of a quick-fix."""

    id: str
    kind: str  # construct | reference | mode | set_train | skeleton | attribute | function | partial
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
    edits: list[Edit] = field(default_factory=list, repr=False)
    # ids of the nodes whose sites this one relies on (see inference.py: "origin")
    requires: set = field(default_factory=set, repr=False)
    # Planning state, dropped when the migration is done: the node's offsets in the original text,
    # the (code, message, node) of a marker comment to add, the statement insertions follow.
    span: tuple[int, int] | None = field(default=None, repr=False)
    marker: tuple | None = field(default=None, repr=False)
    post_stmt: ast.stmt | None = field(default=None, repr=False)


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


@dataclass
class RefConversion:
    """A MindSpore name the migrated code spells: either in place of a torch reference (``ref``) or
    in code the tool writes (``ref`` None). How it is spelled depends on the imports, decided once
    every site is planned; ``group`` is the torch import it stands next to."""

    ref: TorchRef | None
    target: str
    site: Site
    group: object = None
    text: str | None = None  # filled by the import planner

    def __post_init__(self) -> None:
        if self.group is None and self.ref is not None:
            self.group = self.ref.group

    def __call__(self) -> str:
        if self.text is None:
            raise RuntimeError(f"{self.target} was never planned")
        return self.text


class Migration:
    """The state of one migration: the analysis, and the sites, edits and findings it plans."""

    def __init__(self, source: str, tree: ast.Module, path: str | None, config: Config):
        self.source = source
        self.text = SourceText(source)
        self.tree = tree
        self.path = path
        self.config = config
        self.rules = config.ruleset
        self.target_version = config.target_version()
        self.index = Index(tree)
        self.refs, self.ambiguous, self.import_groups = torch_references(
            self.index, self.rules.canonical, self.is_known
        )
        self.ref_by_node: dict[int, TorchRef] = {id(r.node): r for r in self.refs}
        self.sites: list[Site] = []
        self._site_by_id: dict[str, Site] = {}
        self.site_by_node: dict[int, Site] = {}
        self.selected: set[str] | None = None  # the sites `only` expands to (see select_components)
        self.findings: list[Finding] = []
        self.conversions: list[RefConversion] = []
        self.converted_refs: set[int] = set()  # id(ref.node) of references a site converts
        self.handled: set[int] = set()  # id(node) of call/reference nodes a pass took care of
        self.post_statements: dict[int, list[tuple[Site, Callable[[], str]]]] = {}
        self.types = None  # set by modules.infer_modules

    # -- facts -----------------------------------------------------------------------------------

    def is_known(self, qual: str) -> bool:
        r = self.rules
        return qual in r.layers or qual in r.names or qual in r.dtypes

    def qualified(self, node: ast.expr, scope) -> str | None:
        """The dotted name an expression spells through the file's imports (any module), if any."""
        from .analysis import dotted_chain

        parts = dotted_chain(node)
        if not parts:
            return None
        found = scope.resolve(parts[0])
        if found is None:
            return None
        imports = [b for b in found[1] if b.kind == "import" and b.qual]
        if len(imports) != len(found[1]) or len({b.qual for b in imports}) != 1:
            return None
        return ".".join([imports[0].qual, *parts[1:]])

    def layer_rule(self, qual: str | None) -> LayerRule | None:
        return self.rules.layers.get(qual) if qual else None

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.index.parents.get(node)

    def ref(self, node: ast.AST) -> TorchRef | None:
        return self.ref_by_node.get(id(node))

    @functools.cached_property
    def in_scope(self) -> bool:
        """A file is migrated when it references a torch normalization layer, or when it is part way
        through a migration (it imports MindSpore and still references torch's nn.Module & co.)."""
        layers = self.rules.layers
        if any(r.qual in layers for r in self.refs) or any(a.qual in layers for a in self.ambiguous):
            return True
        if any(self._names_layer(r) for r in self.refs):
            return True
        from .analysis import is_mindspore

        return any(is_mindspore(b.qual) for b in self.index.imports) and any(
            r.qual in self.rules.names for r in self.refs)

    def _names_layer(self, ref: TorchRef) -> bool:
        """``getattr(nn, "BatchNorm2d")``: a layer named by a string on a torch module."""
        call = self.parent(ref.node)
        if not (isinstance(call, ast.Call) and len(call.args) >= 2 and call.args[0] is ref.node
                and isinstance(call.func, ast.Name) and call.func.id == "getattr"
                and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str)):
            return False
        return self.rules.canonical(f"{ref.qual}.{call.args[1].value}") in self.rules.layers

    # -- sites, edits, findings ------------------------------------------------------------------

    def site(self, kind: str, node: ast.AST, rule: str | None = None, message: str = "") -> Site:
        line, col = node.lineno, self.text.char_col(node.lineno, node.col_offset)
        end_line, end_col = node.end_lineno, self.text.char_col(node.end_lineno, node.end_col_offset)
        site_id = f"{line}:{col}:{kind}"
        existing = self._site_by_id.get(site_id)
        if existing is not None:
            return existing
        s = Site(site_id, kind, line, col, end_line, end_col, rule=rule, message=message,
                 original=self.text.segment(node))
        s.span = self.text.span(node)
        # A node's own site comes first (its construction); a set_train() chained to it is another.
        self.site_by_node.setdefault(id(node), s)
        self.sites.append(s)
        self._site_by_id[site_id] = s
        return s

    def site_of(self, node: ast.AST) -> Site | None:
        """The site planned for a node, if any."""
        return self.site_by_node.get(id(node))

    def site_at(self, kind: str, line: int, column: int) -> Site:
        """A site that belongs to no single node (the import statements of the file)."""
        site_id = f"{line}:{column}:{kind}"
        existing = self._site_by_id.get(site_id)
        if existing is None:
            existing = Site(site_id, kind, line, column, line, column)
            self.sites.append(existing)
            self._site_by_id[site_id] = existing
        return existing

    def active(self, site: Site) -> bool:
        # Import edits follow from the active sites, so they always apply.
        if self.config.only is None or site.kind == "imports":
            return True
        if self.selected is None:
            self.selected = select_components(self.sites, self.site_by_node, self.config.only)
        return site.id in self.selected

    def edit(self, site: Site, start: int, end: int, text, *, is_rewrite: bool = False) -> Edit:
        if is_rewrite:
            text = rewrite(text)
        e = Edit(start, end, text, site=site.id, order=len(site.edits))
        site.edits.append(e)
        return e

    def replace_node(self, site: Site, node: ast.AST, text) -> Edit:
        start, end = self.text.span(node)
        return self.edit(site, start, end, text)

    def convert_ref(self, site: Site, ref: TorchRef, target: str) -> RefConversion:
        conv = RefConversion(ref, target, site)
        self.conversions.append(conv)
        self.converted_refs.add(id(ref.node))

        def spell() -> str:
            return conv.text if conv.text is not None else self.text.segment(ref.node)

        self.replace_node(site, ref.node, spell)
        return conv

    def spell(self, site: Site, target: str, near: TorchRef) -> RefConversion:
        """A MindSpore name for code the tool writes; call the result (after planning) for its text."""
        conv = RefConversion(None, target, site, group=near.group)
        self.conversions.append(conv)
        return conv

    def insert_after_statement(self, site: Site, stmt: ast.stmt, render: Callable[[], str]) -> None:
        """Queue a statement to insert after ``stmt`` (one line, same indentation)."""
        self.post_statements.setdefault(id(stmt), []).append((site, render))
        site.post_stmt = stmt

    def finding(self, code: str, node: ast.AST | None, message: str | None = None, *,
                line: int | None = None, column: int | None = None) -> Finding:
        spec = self.rules.findings[code]
        if node is not None:
            line = node.lineno
            column = self.text.char_col(node.lineno, node.col_offset)
            end_line = getattr(node, "end_lineno", None)
            end_col = self.text.char_col(node.end_lineno, node.end_col_offset) if end_line else None
        else:
            end_line = end_col = None
        f = Finding(code, spec.severity, line or 1, column or 0, message or spec.title, self.path,
                    end_line, end_col)
        self.findings.append(f)
        return f

    def unconverted(self, site: Site, code: str, node: ast.AST, message: str) -> None:
        """The site stays as torch: an error finding, and a marker comment in the file."""
        site.converted = False
        site.message = message
        # Whatever the site planned before it found out is withdrawn.
        site.edits.clear()
        withdrawn = [c for c in self.conversions if c.site is site]
        for c in withdrawn:
            self.conversions.remove(c)
            if c.ref is not None:
                self.converted_refs.discard(id(c.ref.node))
        for stmt_id, queued in list(self.post_statements.items()):
            self.post_statements[stmt_id] = [(s, r) for s, r in queued if s is not site]
        self.finding(code, node, message)
        site.marker = (code, message, node)

    def close(self) -> None:
        """Drop the analysis. Scopes and their bindings, import groups and their references, the
        type queries and the migration all point at each other; cutting those links lets reference
        counting free a whole file's trees at once instead of leaving them to the cyclic collector."""
        for scope in (self.index.module_scope, *self.index.scope_of.values()):
            scope.bindings = {}
        for group in self.import_groups:
            group.refs = []
        self.refs, self.ambiguous, self.import_groups, self.conversions = [], [], [], []
        self.ref_by_node, self.site_by_node, self.post_statements = {}, {}, {}
        self.types = self.index = self.tree = None
        for site in self.sites:
            site.marker = site.post_stmt = None

    # -- result --------------------------------------------------------------------------------

    def active_edits(self) -> list[Edit]:
        out = []
        for s in self.sites:
            if self.active(s):
                out.extend(s.edits)
        return out


def select_components(sites: list[Site], site_by_node: dict[int, Site], only: frozenset[str]) -> set[str]:
    """The sites a selection stands for: each selected site with every site it relies on or that
    relies on it (a set_train() insertion, the constructor call it follows, the attribute renames on
    that layer). Applying part of such a group would leave code whose remaining sites can no longer
    be recognised, so a group is converted whole, and one site at a time ends where all at once does."""
    parent = {s.id: s.id for s in sites}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s in sites:
        for node_id in s.requires:
            other = site_by_node.get(node_id)
            if other is not None:
                parent[find(s.id)] = find(other.id)
    roots = {find(i) for i in only if i in parent}
    return {s.id for s in sites if find(s.id) in roots}


def _strip_bom(source: str) -> tuple[str, str]:
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


def migrate_source(source: str, *, path: str | None = None, config: Config | None = None) -> MigrationResult:
    """Migrate one module's source. Raises MigrationError when it cannot be parsed."""
    # Parsing and indexing allocate hundreds of thousands of objects that live until the end of the
    # call; the cyclic collector would traverse them again and again (half the parse time on real
    # models). They are garbage as a whole afterwards, which the collector finds once it runs again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _migrate(source, path, config)
    finally:
        if enabled:
            gc.enable()


def _migrate(source: str, path: str | None, config: Config | None) -> MigrationResult:
    from . import passes  # the passes import the engine's types

    config = config or Config()
    bom, body = _strip_bom(source)
    rules = config.ruleset
    if not rules.prefilter.matches(body):
        return MigrationResult(source, [], False, path=path)
    tree = parse_source(body, path)
    mig = Migration(body, tree, path, config)
    if not mig.refs and not mig.ambiguous:
        mig.close()
        return MigrationResult(source, [], False, path=path)
    for step in passes.PIPELINE:
        step(mig)
    try:
        code = apply_edits(body, mig.active_edits())
    except EditConflict as exc:  # a bug in a pass; never write a half-migrated file
        raise MigrationError(f"internal error: {exc}", path) from exc
    for site in mig.sites:
        if site.kind in ("construct", "function", "partial") and site.converted and site.edits and mig.active(site):
            site.replacement = passes.render_site(mig, site)
    findings = sorted(mig.findings, key=Finding.sort_key)
    remaining = sorted({r.qual for r in mig.refs if id(r.node) not in mig.converted_refs})
    mig.close()
    code = bom + code
    return MigrationResult(code, findings, code != source, sorted(mig.sites, key=lambda s: (s.line, s.column)),
                           remaining, path)

