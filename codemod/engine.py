"""The pure core: ``plan_source`` (the front stage, on Python's ``ast``: facts, passes, a plan) and
``migrate_source`` (the plan carried out by the LibCST transformers). Every front end (CLI,
pre-commit, language server, verify) calls them, so a fix proven in one is the fix shipped in all."""

from __future__ import annotations

import ast
import gc
from dataclasses import dataclass, field

from . import passes
from .findings import Finding
from .migration import Migration
from .model import Config, MigrationError, MigrationResult, Site
from .plan import Plan, describe
from .ruleset import rules_of
from .source import parse_source, strip_bom


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
        _bom, body = strip_bom(self.source)
        return rewrite(body, self.plan, self.render, self.path, module).module

    def migrate(self, module=None, *, replacements: bool = True) -> MigrationResult:
        """The migrated source (``module``: the LibCST tree of the source, if already parsed).
        ``replacements``: give each site the migrated text of its node (``Site.replacement``), which
        the numeric check and the editor show; a run that only writes files does without."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            bom, body = strip_bom(self.source)
            code = body
            if self.plan.changes:
                applied = rewrite(body, self.plan, self.render if replacements else {}, self.path, module)
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
    config = config or Config()
    _bom, body = strip_bom(source)
    rules = rules_of(config)
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
