"""The passes of a migration, in order. Each reads the analysis and plans sites, edits and
findings on the shared Migration; nothing is applied until every pass has run."""

from __future__ import annotations

from ..facts.inference import infer_modules
from ..migration import Migration
from .attributes import plan_attributes
from .checkpoints import plan_checkpoints
from .constructions import plan_constructions
from .imports import plan_imports
from .markers import plan_markers
from .modes import plan_modes
from .references import plan_ambiguous, plan_references
from .skeleton import plan_skeleton
from .tensors import plan_tensors


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
    _when_in_scope(plan_tensors),
    _when_in_scope(plan_modes),
    _when_in_scope(plan_skeleton),
    _when_in_scope(plan_attributes),
    _when_in_scope(plan_checkpoints),
    plan_imports,
    plan_markers,
]
