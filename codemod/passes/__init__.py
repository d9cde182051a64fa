"""The passes of a migration, in order. Each reads the analysis and plans sites, edits and
findings on the shared Migration; nothing is applied until every pass has run."""

from __future__ import annotations

from ..engine import Migration, Site
from ..inference import infer_modules
from ..source import _nest, _render_edit
from .attributes import plan_attributes
from .checkpoints import plan_checkpoints
from .constructions import plan_constructions
from .imports import plan_imports
from .modes import plan_modes
from .references import plan_ambiguous, plan_references
from .skeleton import plan_skeleton
from .statements import plan_markers, plan_statements


def _when_in_scope(step):
    def run(mig: Migration) -> None:
        if mig.in_scope:
            step(mig)
    run.__name__ = step.__name__
    return run


PIPELINE = [
    infer_modules,
    plan_ambiguous,
    _when_in_scope(plan_constructions),
    _when_in_scope(plan_references),
    _when_in_scope(plan_modes),
    _when_in_scope(plan_skeleton),
    _when_in_scope(plan_attributes),
    _when_in_scope(plan_checkpoints),
    plan_imports,
    plan_statements,
    plan_markers,
]


def render_site(mig: Migration, site: Site) -> str:
    """The migrated text of a site's node (a construction call), for the numeric check."""
    start, end = site.span
    inner = [e for e in mig.active_edits() if start <= e.start and e.end <= end
             and not (e.start == e.end and e.start in (start, end))]
    roots = _nest(inner)
    out, pos = [], start
    for e in roots:
        out.append(mig.text.text[pos:e.start])
        out.append(_render_edit(mig.text.text, e))
        pos = e.end
    out.append(mig.text.text[pos:end])
    return "".join(out)
