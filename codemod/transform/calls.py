"""Calls replaced by an expression (``ReplaceCall``): ``m.add_module(name, child)`` ->
``setattr(m, name, child)``. The template is filled with the tree's own nodes: the receiver and each
argument (after their own changes, since a traversal leaves the inner nodes first), so comments and
layout inside them survive."""

from __future__ import annotations

import libcst as cst

from ..plan import ReplaceCall
from . import templates
from .base import PlannedTransformer


class Calls(PlannedTransformer):
    handles = (ReplaceCall,)

    def leave_Call(self, original: cst.Call, updated: cst.BaseExpression) -> cst.BaseExpression:
        for change in self.changes(original):
            if isinstance(updated, cst.Call):
                updated = replace_call(updated, change)
        return updated


def replace_call(call: cst.Call, change: ReplaceCall) -> cst.BaseExpression:
    if len(call.args) != len(change.arguments):
        raise ValueError(f"{len(change.arguments)} planned arguments for {len(call.args)}")
    holes = {f"arg:{planned.keyword}": arg.value for arg, planned in zip(call.args, change.arguments)
             if not planned.drop}
    if isinstance(call.func, cst.Attribute):
        holes["receiver"] = call.func.value
    new = templates.expression(change.template, holes)
    # The call's own parentheses stay around what replaces it.
    return new.with_changes(lpar=[*call.lpar, *new.lpar], rpar=[*new.rpar, *call.rpar])
