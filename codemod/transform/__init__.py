"""The LibCST side of a migration: the plan's changes made to the LibCST tree of the module.

Each transformer has one job (one kind of change). They run together in one traversal, which the
locator keys and prunes: it enters only statements and nodes that hold something the plan changes.
On the way back up, every transformer sees each node in turn, in the order below (so arguments are
converted under a callee already renamed, a call replaced by an expression is filled with its
converted arguments, and a chained ``.set_train()`` goes around the converted call), and the
statements job, last, sees whole lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..plan import Plan
from .arguments import Arguments
from .attributes import Attributes
from .base import PlannedTransformer
from .calls import Calls
from .imports import Imports
from .locate import Locator
from .modes import Chains, Modes
from .references import References
from .skeleton import Skeleton
from .statements import Statements

# The migrated text of a site's node (what a front end shows) is taken after RENDERED_AFTER: a
# construction's own text, before a mode call is chained onto it.
JOBS = (References, Attributes, Arguments, Calls, Modes, Chains, Skeleton, Imports, Statements)
RENDERED_AFTER = Modes


@dataclass
class Applied:
    module: cst.Module
    # site id -> the migrated text of the node it converts
    rendered: dict[str, str] = field(default_factory=dict)


class PlanTransformer(cst.CSTTransformer):
    """The jobs in one traversal, pruned by the locator. Each node is shown only to the jobs that
    have a ``leave_`` method for its type."""

    def __init__(self, plan: Plan, render: dict | None = None):
        super().__init__()
        self.render = render or {}  # key of a node -> the site whose migrated text is wanted
        self.locator = Locator(plan, also=self.render)
        jobs = [job([c for c in plan.changes if isinstance(c, job.handles)], self.locator) for job in JOBS]
        self.jobs_for: dict[type, list[PlannedTransformer]] = {}
        for job in jobs:
            for node_type in job.leaves():
                self.jobs_for.setdefault(node_type, []).append(job)
        self.rendered: dict[str, cst.CSTNode] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        return self.locator.enter(node)

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):
        result = updated
        for job in self.jobs_for.get(type(original), ()):
            result = job.on_leave(original, result)
            if result is cst.RemovalSentinel.REMOVE or type(result) is cst.FlattenSentinel:
                break  # removed or flattened: nothing more to do to it
            if job.__class__ is RENDERED_AFTER and self.render:
                site = self.render.get(self.locator.key(original))
                if site is not None:
                    self.rendered[site] = result
        self.locator.leave(original)
        return result

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.locator.enter_field(node, attribute)

    def on_leave_attribute(self, original: cst.CSTNode, attribute: str) -> None:
        self.locator.leave_field(original, attribute)


def apply_plan(module: cst.Module, plan: Plan, render: dict | None = None) -> Applied:
    """The module with the plan's changes; ``render`` maps node keys to the sites whose migrated
    text is wanted (what a front end shows, what the numeric check evaluates)."""
    if not plan.changes and not render:
        return Applied(module)
    transformer = PlanTransformer(plan, render)
    new = module.visit(transformer)
    rendered = {site: module.code_for_node(node.with_changes(lpar=[], rpar=[]))
                for site, node in transformer.rendered.items()}
    return Applied(new, rendered)
