"""Training mode: ``x.train()``/``x.eval()`` -> ``x.set_train(...)``; and calls chained onto a
construction whose binding no statement can follow (``nn.BatchNorm2d(4).set_train()``)."""

from __future__ import annotations

import libcst as cst

from ..plan import ChainCall, SetMode
from . import templates
from .base import PlannedTransformer

_NO_SPACE = cst.SimpleWhitespace("")


class Modes(PlannedTransformer):
    handles = (SetMode,)

    def leave_Call(self, original: cst.Call, updated: cst.BaseExpression) -> cst.BaseExpression:
        for change in self.changes(original):
            if isinstance(updated, cst.Call) and isinstance(updated.func, cst.Attribute):
                updated = _set_mode(updated, change.mode)
        return updated


class Chains(PlannedTransformer):
    handles = (ChainCall,)

    def leave_Call(self, original: cst.Call, updated: cst.BaseExpression) -> cst.BaseExpression:
        return self._chain(original, updated)

    def leave_Name(self, original: cst.Name, updated: cst.BaseExpression) -> cst.BaseExpression:
        return self._chain(original, updated)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.BaseExpression) -> cst.BaseExpression:
        return self._chain(original, updated)

    def _chain(self, original: cst.CSTNode, updated: cst.BaseExpression) -> cst.BaseExpression:
        for change in self.changes(original):
            # The call's own parentheses go around the whole chain.
            inner = updated.with_changes(lpar=[], rpar=[])
            args = [cst.Arg(templates.expression(change.arguments))] if change.arguments else []
            updated = cst.Call(func=cst.Attribute(value=inner, attr=cst.Name(change.method)), args=args,
                               lpar=updated.lpar, rpar=updated.rpar)
        return updated


def _set_mode(call: cst.Call, mode: bool | None) -> cst.Call:
    func = call.func.with_changes(attr=cst.Name("set_train"))
    if mode is None:  # x.train(flag): the arguments stay
        return call.with_changes(func=func)
    # Everything from the method's name to the closing parenthesis is written anew.
    args = [] if mode else [cst.Arg(cst.Name("False"))]
    return call.with_changes(func=func, args=args, whitespace_after_func=_NO_SPACE,
                             whitespace_before_args=_NO_SPACE)
