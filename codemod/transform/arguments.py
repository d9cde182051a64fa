"""Constructor and function calls: the arguments mapped to MindSpore's (dropped, spelled with a
keyword, converted, added). Each argument keeps the comma after it with the whitespace and comments
around that comma, so dropping one takes its comma along, and the argument that ends up last is given
the list's original last comma (a trailing comma stays where it was)."""

from __future__ import annotations

import libcst as cst

from ..plan import ChangeArguments
from . import templates
from .base import PlannedTransformer

_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


class Arguments(PlannedTransformer):
    handles = (ChangeArguments,)

    def leave_Call(self, original: cst.Call, updated: cst.BaseExpression) -> cst.BaseExpression:
        for change in self.changes(original):
            if isinstance(updated, cst.Call):
                updated = change_arguments(updated, change)
        return updated


def change_arguments(call: cst.Call, change: ChangeArguments) -> cst.Call:
    original = list(call.args)
    head, args = original[: change.skip], original[change.skip :]
    if len(args) != len(change.arguments):
        raise ValueError(f"{len(change.arguments)} planned arguments for {len(args)}")
    # The (migrated) value of every argument, by torch parameter: values derived from others use them.
    values = {planned.param: arg.value for arg, planned in zip(args, change.arguments)}
    kept: list[cst.Arg] = []
    packed: list[cst.Arg] = []  # the arguments that become one tuple (torch's *size)
    for i, (arg, planned) in enumerate(zip(args, change.arguments)):
        if planned.drop:
            continue
        value = converted_value(arg.value, planned, values)
        if value is not arg.value:
            arg = arg.with_changes(value=value)
        if planned.positional and arg.keyword is not None:
            arg = arg.with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
        elif planned.keyword and (arg.keyword is None or arg.keyword.value != planned.keyword):
            if arg.keyword is None:
                arg = arg.with_changes(keyword=cst.Name(planned.keyword), equal=_EQUAL)
            else:
                arg = arg.with_changes(keyword=cst.Name(planned.keyword))
        if change.pack is not None and change.pack[0] <= i < change.pack[1]:
            packed.append(arg)
            if i + 1 < change.pack[1]:
                continue
            arg = _packed(packed, change.arguments[change.pack[0]].keyword)
        kept.append(arg)
    all_args = head + kept
    trailing = original[-1].comma if original else cst.MaybeSentinel.DEFAULT
    if change.added:
        separator = _separator(call, original)
        for keyword, template in change.added:
            value = templates.expression(template, argument_values(values))
            if all_args:
                all_args[-1] = all_args[-1].with_changes(comma=separator)
            all_args.append(cst.Arg(value=value, keyword=cst.Name(keyword), equal=_EQUAL))
    if all_args:
        all_args[-1] = all_args[-1].with_changes(comma=trailing)
    return call.with_changes(args=all_args)


def converted_value(value: cst.BaseExpression, planned, values: dict) -> cst.BaseExpression:
    """An argument's value as planned: converted by its template, derived from other arguments
    (``values``: their values by torch parameter), or as it is."""
    if planned.value is not None:
        return _converted(value, planned.value)
    if planned.derived is not None:
        return templates.expression(planned.derived, argument_values(values))
    return value


def _packed(args: list[cst.Arg], keyword: str | None) -> cst.Arg:
    """Positional arguments as one tuple argument: ``2, 3`` -> ``(2, 3)``, ``*shape`` -> ``(*shape,)``;
    the commas between them stay, the last one's goes after the tuple."""
    elements = []
    for i, arg in enumerate(args):
        last = i == len(args) - 1
        comma = arg.comma if not last else (cst.Comma() if len(args) == 1 or arg.star else cst.MaybeSentinel.DEFAULT)
        if arg.star == "*":
            elements.append(cst.StarredElement(arg.value, comma=comma, whitespace_before_value=arg.whitespace_after_star))
        else:
            elements.append(cst.Element(arg.value, comma=comma))
    value = cst.Tuple(elements)  # parenthesised
    if keyword:
        return cst.Arg(value=value, keyword=cst.Name(keyword), equal=_EQUAL, comma=args[-1].comma)
    return cst.Arg(value=value, comma=args[-1].comma)


def _converted(value: cst.BaseExpression, template) -> cst.BaseExpression:
    """The value made into the template's expression (its ``{value}`` hole); parentheses written
    around the value stay around the result (a tuple's are its own)."""
    if value.lpar and not isinstance(value, cst.Tuple):
        inner = value.with_changes(lpar=[], rpar=[])
        return templates.expression(template, {"value": inner}).with_changes(lpar=value.lpar, rpar=value.rpar)
    return templates.expression(template, {"value": value})


def argument_values(values: dict) -> dict:
    return {f"arg:{param}": value for param, value in values.items()}


def _separator(call: cst.Call, args: list[cst.Arg]) -> cst.Comma:
    """The comma that separates arguments in this call's layout, for the ones it adds."""
    for arg in args[:-1]:
        if isinstance(arg.comma, cst.Comma):
            after = arg.comma.whitespace_after
            if isinstance(after, cst.ParenthesizedWhitespace):  # its layout, not the comment on its line
                return arg.comma.with_changes(whitespace_after=after.with_changes(first_line=cst.TrailingWhitespace()))
            return arg.comma
    ws = call.whitespace_before_args
    if isinstance(ws, cst.ParenthesizedWhitespace):  # one argument per line: the next one too
        return cst.Comma(whitespace_after=ws)
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
