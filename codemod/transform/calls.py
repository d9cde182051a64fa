"""Calls replaced by an expression (``ReplaceCall``): ``m.add_module(name, child)`` ->
``setattr(m, name, child)``, ``x.size(0)`` -> ``x.shape[0]``,
``x.contiguous()`` -> ``x``, ``x.relu()`` -> ``ops.relu(x)``. The template is filled with the tree's
own nodes: the receiver and each argument, converted as planned (after their own changes, since a
traversal leaves the inner nodes first), so comments and layout inside them survive."""

from __future__ import annotations

import libcst as cst

from ..plan import ReplaceCall
from . import templates
from .arguments import argument_values, converted_value
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
    raw = {planned.param: arg.value for arg, planned in zip(call.args, change.arguments)}
    holes: dict[str, cst.BaseExpression] = {}
    for arg, planned in zip(call.args, change.arguments):
        if not planned.drop:
            holes[f"arg:{planned.keyword}"] = converted_value(arg.value, planned, raw)
    for keyword, template in change.added:
        holes[f"arg:{keyword}"] = templates.expression(template, argument_values(raw))
    if isinstance(call.func, cst.Attribute):
        receiver = call.func.value
        if receiver.lpar and _an_argument(change.template.text, "receiver"):
            receiver = receiver.with_changes(lpar=[], rpar=[])  # (x * 2).relu() -> ops.relu(x * 2)
        holes["receiver"] = receiver
    new = templates.expression(change.template, holes)
    # The call's own parentheses stay around what replaces it.
    return new.with_changes(lpar=[*call.lpar, *new.lpar], rpar=[*new.rpar, *call.rpar])


def _an_argument(text: str, hole: str) -> bool:
    """Whether the template passes the hole to a call as a whole argument (where the value needs no
    parentheses of its own)."""
    compiled = templates.compile_expression(text)
    for name, path in compiled.holes:
        if name == hole:
            node = compiled.node
            for field, index in path[:-1]:
                node = getattr(node, field) if index is None else getattr(node, field)[index]
            return isinstance(node, cst.Arg)
    return False
