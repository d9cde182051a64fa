"""The argument-list and import-name edits as LibCST renders them: the reference that
codemod/sequences.py is checked against (tests/test_sequences.py). This was the tool's own
implementation until the text-based one replaced it on the hot path."""

from __future__ import annotations

import libcst as cst

_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


def rewrite_arguments(text: str, plan, skip: int) -> str:
    expr = cst.parse_expression(text)
    if not isinstance(expr, cst.Call):
        raise ValueError(f"not a call: {text!r}")
    module = cst.Module([])
    original = list(expr.args)
    head, args = original[:skip], original[skip:]
    texts = {ap.param: module.code_for_node(arg.value) for arg, ap in zip(args, plan.args)}
    kept: list[cst.Arg] = []
    for arg, ap in zip(args, plan.args):
        if ap.drop:
            continue
        if ap.derive is not None:
            arg = arg.with_changes(value=cst.parse_expression(ap.derive(texts)))
        if ap.keyword and (arg.keyword is None or arg.keyword.value != ap.keyword):
            if arg.keyword is None:
                arg = arg.with_changes(keyword=cst.Name(ap.keyword), equal=_EQUAL)
            else:
                arg = arg.with_changes(keyword=cst.Name(ap.keyword))
        kept.append(arg)
    all_args = head + kept
    trailing = original[-1].comma if original else cst.MaybeSentinel.DEFAULT
    if plan.added:
        separator = _separator(expr, original)
        for keyword, value in plan.added:
            value_text = value if isinstance(value, str) else value(texts)
            new = cst.Arg(value=cst.parse_expression(value_text), keyword=cst.Name(keyword), equal=_EQUAL)
            if all_args:
                all_args[-1] = all_args[-1].with_changes(comma=separator)
            all_args.append(new)
    if all_args:
        all_args[-1] = all_args[-1].with_changes(comma=trailing)
    return module.code_for_node(expr.with_changes(args=all_args))


def _separator(call: cst.Call, args: list[cst.Arg]) -> cst.Comma:
    for arg in args[:-1]:
        if isinstance(arg.comma, cst.Comma):
            return arg.comma
    ws = call.whitespace_before_args
    if isinstance(ws, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=ws)
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def without_aliases(stmt_text: str, keep: list[bool]) -> str:
    module = cst.parse_module(stmt_text)
    node = module.body[0].body[0]
    names = list(node.names)
    last_comma = names[-1].comma
    new = [n for n, k in zip(names, keep) if k]
    new[-1] = new[-1].with_changes(comma=last_comma)
    return module.code_for_node(node.with_changes(names=new))
