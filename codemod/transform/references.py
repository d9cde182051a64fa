"""References to torch objects that now mean MindSpore ones: ``nn.BatchNorm2d`` ->
``ms_nn.BatchNorm2d``, ``isinstance(m, BatchNorm2d)`` -> ``isinstance(m, MsBatchNorm2d)``."""

from __future__ import annotations

import libcst as cst

from ..plan import ReplaceReference
from .base import PlannedTransformer
from .templates import dotted


class References(PlannedTransformer):
    handles = (ReplaceReference,)

    def _replace(self, original: cst.BaseExpression, updated: cst.BaseExpression) -> cst.BaseExpression:
        for change in self.changes(original):
            # The reference's own parentheses stay where they were.
            return dotted(str(change.spelling)).with_changes(lpar=updated.lpar, rpar=updated.rpar)
        return updated

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        return self._replace(original, updated)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        return self._replace(original, updated)
