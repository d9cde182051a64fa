"""The pure core: ``migrate_source``. Every front end (CLI, pre-commit, language server, verify)
calls it, so a fix proven in one is the fix shipped in all."""

from __future__ import annotations

import ast
import enum
import functools
import gc
import warnings
from dataclasses import dataclass, field

from .analysis import Index, TorchRef, torch_references
from .findings import Finding
from .keys import NodeKeys
from .plan import Change, Plan, ReplaceReference, Spelling, describe
from .ruleset import LayerRule, RuleSet, default_rules, parse_version
from .source import SourceText


@dataclass(frozen=True)
class Config:
    """What a migration should do. ``only`` restricts the edits to the sites with these ids (the
    language server's quick-fix for one site); findings are always reported for every site."""

    markers: bool = True
    mindspore_version: str | None = None
    rules: RuleSet | None = None
    only: frozenset[str] | None = None
    # The project the file belongs to (codemod.project.Project): what its imports from the other
    # files of the project are. None: the file is read alone.
    project: object | None = None

    @property
    def ruleset(self) -> RuleSet:
        return self.rules or default_rules()

    def target_version(self) -> tuple[int, ...]:
        if self.mindspore_version:
            return parse_version(self.mindspore_version)
        return self.ruleset.newest_version()


class SiteKind(enum.StrEnum):
    CONSTRUCT = "construct"  # a call that builds a layer
    FUNCTION = "function"  # a call of a normalization function
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
    # ids of the nodes whose sites this one relies on (see inference.py: "origin")
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


@dataclass
class SpelledName:
    """A MindSpore name the migrated code spells: in place of a torch reference (``ref``) or in code
    the tool writes (``ref`` None). Its spelling depends on the imports, decided once every site is
    planned (passes/imports.py); ``group`` is the torch import it stands next to."""

    ref: TorchRef | None
    spelling: Spelling
    site: Site
    group: object = None

    def __post_init__(self) -> None:
        if self.group is None and self.ref is not None:
            self.group = self.ref.group

    @property
    def target(self) -> str:
        return self.spelling.target


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
        self.spelled: list[SpelledName] = []
        self.converted_refs: set[int] = set()  # id(ref.node) of references a site converts
        self.handled: set[int] = set()  # id(node) of call/reference nodes a pass took care of
        self.keys = NodeKeys(tree, self.index.parents)
        self.types = None  # set by inference.infer_modules
        self.project = config.project.view(path) if config.project is not None else None

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
        from .analysis import is_mindspore

        return (any(is_mindspore(b.qual) for b in self.index.imports)
                and any(r.qual in self.rules.names for r in self.refs)) or self.uses_project

    @functools.cached_property
    def uses_project(self) -> bool:
        """The file uses a class, factory or function of another file of the project that the
        migration makes MindSpore's (``from models import Net``): it is migrated too."""
        return self.project is not None and self.project.uses(self)

    # -- sites, edits, findings ------------------------------------------------------------------

    def site(self, kind: SiteKind | str, node: ast.AST, rule: str | None = None, message: str = "") -> Site:
        kind = SiteKind(kind)
        line, col = node.lineno, self.text.char_col(node.lineno, node.col_offset)
        end_line, end_col = node.end_lineno, self.text.char_col(node.end_lineno, node.end_col_offset)
        site_id = f"{line}:{col}:{kind}"
        existing = self._site_by_id.get(site_id)
        if existing is not None:
            return existing
        s = Site(site_id, kind, line, col, end_line, end_col, rule=rule, message=message,
                 original=self.text.segment(node))
        s.node = node
        self.site_by_node[id(node)] = s
        self.sites.append(s)
        self._site_by_id[site_id] = s
        return s

    def site_of(self, node: ast.AST) -> Site | None:
        """The site planned for a node, if any."""
        return self.site_by_node.get(id(node))

    def site_at(self, kind: SiteKind | str, line: int, column: int) -> Site:
        kind = SiteKind(kind)
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

    def key(self, node: ast.AST):
        return self.keys.key(node)

    def change(self, site: Site, change: Change) -> Change:
        site.changes.append(change)
        return change

    def convert_ref(self, site: Site, ref: TorchRef, target: str) -> Spelling:
        """The reference now names ``target``, spelled as the import plan decides."""
        spelling = Spelling(target)
        self.spelled.append(SpelledName(ref, spelling, site))
        self.converted_refs.add(id(ref.node))
        self.change(site, ReplaceReference(site.id, self.key(ref.node), spelling, self.text.segment(ref.node)))
        return spelling

    def spell(self, site: Site, target: str, near: TorchRef) -> Spelling:
        """A MindSpore name for code the tool writes, spelled next to the torch import of ``near``."""
        spelling = Spelling(target)
        self.spelled.append(SpelledName(None, spelling, site, group=near.group))
        return spelling

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
        site.changes.clear()
        withdrawn = [c for c in self.spelled if c.site is site]
        for c in withdrawn:
            self.spelled.remove(c)
            if c.ref is not None:
                self.converted_refs.discard(id(c.ref.node))
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
        self.refs, self.ambiguous, self.import_groups, self.spelled = [], [], [], []
        self.ref_by_node, self.site_by_node = {}, {}
        self.types = self.index = self.tree = self.keys = None
        for site in self.sites:
            site.marker = site.node = None

    # -- result --------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """The changes of the active sites, with what the transformers need to find them."""
        # A reference spelled as it was (its import is what changes) is a change of its site's, but
        # not one the transformers have to make.
        changes = [c for s in self.sites if self.active(s) for c in s.changes
                   if not (type(c) is ReplaceReference and str(c.spelling) == c.written)]
        return Plan(changes, self.keys.ends, self.keys.subtrees)


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


@dataclass
class Planned:
    """A module's migration as the front stage plans it, on Python's ``ast`` alone: the plan and what
    is reported (findings, sites). ``migrate()`` carries the plan out with LibCST. The language
    server's diagnostics need only this; writing a change needs the rest."""

    source: str
    plan: Plan
    findings: list[Finding]
    sites: list[Site]
    remaining_torch: list[str]
    path: str | None = None
    render: dict = field(default_factory=dict, repr=False)  # node key -> site whose migrated text is kept

    def rewrite(self, module):
        """The LibCST tree of the source (without its BOM) with the plan carried out."""
        _bom, body = _strip_bom(self.source)
        return rewrite(body, self.plan, self.render, self.path, module).module

    def migrate(self, module=None) -> MigrationResult:
        """The migrated source (``module``: the LibCST tree of the source, if already parsed)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            bom, body = _strip_bom(self.source)
            code = body
            if self.plan.changes:
                applied = rewrite(body, self.plan, self.render, self.path, module)
                code = applied.module.code
                for site in self.sites:
                    site.replacement = applied.rendered.get(site.id, site.replacement)
        finally:
            if enabled:
                gc.enable()
        code = bom + code
        return MigrationResult(code, self.findings, code != self.source, self.sites, self.remaining_torch, self.path)


def migrate_source(source: str, *, path: str | None = None, config: Config | None = None) -> MigrationResult:
    """Migrate one module's source. Raises MigrationError when it cannot be parsed."""
    return plan_source(source, path=path, config=config).migrate()


def plan_source(source: str, *, path: str | None = None, config: Config | None = None) -> Planned:
    """Plan the migration of one module's source (the front stage, on ``ast``). Raises MigrationError
    when it cannot be parsed."""
    # Parsing and indexing allocate hundreds of thousands of objects that live until the end of the
    # call; the cyclic collector would traverse them again and again (half the parse time on real
    # models). They are garbage as a whole afterwards, which the collector finds once it runs again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _plan(source, path, config)
    finally:
        if enabled:
            gc.enable()


def rewrite(body: str, plan: Plan, render: dict, path: str | None, module=None):
    """The plan carried out on the LibCST tree of ``body``."""
    import libcst

    from .transform import apply_plan

    if module is None:
        try:
            module = libcst.parse_module(body)
        except libcst.ParserSyntaxError as exc:
            raise MigrationError(f"LibCST cannot parse this file: {exc.message}", path, exc.raw_line,
                                 exc.raw_column) from None
    try:
        return apply_plan(module, plan, render)
    except Exception as exc:  # a bug: never write a half-migrated file
        raise MigrationError(f"internal error: {type(exc).__name__}: {exc}", path) from exc


def _plan(source: str, path: str | None, config: Config | None) -> Planned:
    from . import passes  # the passes import the engine's types

    config = config or Config()
    _bom, body = _strip_bom(source)
    rules = config.ruleset
    project = config.project
    if not rules.prefilter.matches(body) and not (project is not None and project.may_use(body, path)):
        return Planned(source, Plan(), [], [], [], path)
    tree = parse_source(body, path)
    mig = Migration(body, tree, path, config)
    if not mig.refs and not mig.ambiguous and (mig.project is None or not mig.project.imports_project(mig)):
        mig.close()
        return Planned(source, Plan(), [], [], [], path)
    for step in passes.PIPELINE:
        step(mig)
    if mig.project is not None:
        mig.project.report_unresolved(mig)
    plan = mig.plan()
    # The migrated text of each site's node: what a front end shows, what the numeric check evaluates.
    render = {}
    for site in mig.sites:
        if not (site.converted and site.changes and mig.active(site)):
            continue
        if isinstance(site.node, (ast.Call, ast.Attribute, ast.Name)):
            render[mig.key(site.node)] = site.id
        if not site.message:
            subject = site.original if isinstance(site.node, ast.Call) else None
            site.message = describe(site.changes, site.target, subject)
    findings = sorted(mig.findings, key=Finding.sort_key)
    remaining = sorted({r.qual for r in mig.refs if id(r.node) not in mig.converted_refs})
    mig.close()
    return Planned(source, plan, findings, sorted(mig.sites, key=lambda s: (s.line, s.column)), remaining, path,
                   render)
