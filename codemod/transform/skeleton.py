"""The module skeleton: ``def forward`` -> ``def construct`` in classes that become Cells."""

from __future__ import annotations

import libcst as cst

from ..plan import RenameDefinition
from .base import PlannedTransformer


class Skeleton(PlannedTransformer):
    handles = (RenameDefinition,)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        for change in self.changes(original):
            updated = updated.with_changes(name=cst.Name(change.new))
        return updated
