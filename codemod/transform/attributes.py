"""Attribute names: ``bn.running_mean`` -> ``bn.moving_mean``, ``bn3.weight`` -> ``bn3.bn2d.gamma``,
``m.forward`` -> ``m.construct``."""

from __future__ import annotations

import libcst as cst

from ..plan import RenameAttribute
from .base import PlannedTransformer


class Attributes(PlannedTransformer):
    handles = (RenameAttribute,)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.BaseExpression) -> cst.BaseExpression:
        for change in self.changes(original):
            if not isinstance(updated, cst.Attribute):
                continue
            *path, last = change.new.split(".")
            value, dot = updated.value, updated.dot
            for part in path:  # a nested layer: bn2d.gamma
                value, dot = cst.Attribute(value=value, dot=dot, attr=cst.Name(part)), cst.Dot()
            updated = updated.with_changes(value=value, dot=dot, attr=cst.Name(last))
        return updated
