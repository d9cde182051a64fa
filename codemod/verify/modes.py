"""Training mode under ``verify --against``: the mode calls a hand-edited migration makes, compared
with the ones torch2ms's own migration of the original makes.

The layer checks put both layers through training and then inference themselves, so they cannot
see a migrated file that leaves a layer in MindSpore's default inference mode (``set_train()``
missing after the construction) or switches the wrong way (``set_train(True)`` for ``eval()``).
verify never runs the program, so the modes are compared on the calls: per receiver (as written,
within its function or class), in source order, the migrated file must set the modes the migration
sets - with ``set_train`` where the migration converts ``train()``/``eval()`` or inserts
``set_train()``; a mode call the migration leaves alone (its receiver is not known to be a module)
may be written either way. Every planned call is a check (PASS or FAIL), and so is a mode call of
the migrated file that the plan does not have. No framework is imported here.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, replace
from itertools import zip_longest

from ..model import MigrationResult
from .check import FAIL, PASS, SiteCheck

MODE_METHODS = ("train", "eval", "set_train")
LAYER = "training mode"  # what the report shows in the layer column


@dataclass(frozen=True)
class ModeCall:
    scope: str  # the enclosing functions and classes, dotted ("" at module level)
    receiver: str  # as written (normalised by ast.unparse)
    method: str  # set_train | train | eval
    mode: str  # what the call sets: "True", "False", or its argument's expression
    line: int
    column: int
    origin: str = ""  # why the migration makes this call, for the report
    written: str = ""  # the call as the file writes it (a planned call has none)


    @property
    def text(self) -> str:
        if self.written:
            return self.written
        if self.method == "eval":
            return f"{self.receiver}.eval()"
        argument = "" if self.mode == "True" else self.mode
        return f"{self.receiver}.{self.method}({argument})"


def mode_calls(tree: ast.Module) -> list[ModeCall]:
    """Every ``x.train(...)``, ``x.eval()`` and ``x.set_train(...)`` of a module, in source order."""
    out: list[ModeCall] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, f"{scope}.{child.name}" if scope else child.name)
                continue
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                    and child.func.attr in MODE_METHODS:
                mode = _mode(child)
                if mode is not None:
                    out.append(ModeCall(scope, ast.unparse(child.func.value), child.func.attr, mode,
                                        child.lineno, child.col_offset, written=ast.unparse(child)))
            visit(child, scope)

    visit(tree, "")
    return sorted(out, key=lambda c: (c.line, c.column))


def _mode(call: ast.Call) -> str | None:
    values = [*call.args, *(k.value for k in call.keywords)]
    if call.func.attr == "eval":
        return None if values else "False"  # eval(...) with arguments is not Module.eval
    if not values:
        return "True"
    if len(values) == 1:
        value = values[0]
        return str(value.value) if isinstance(value, ast.Constant) and isinstance(value.value, bool) \
            else ast.unparse(value)
    return ", ".join(ast.unparse(v) for v in values)


def planned_mode_calls(tree: ast.Module, result: MigrationResult) -> list[ModeCall]:
    """The mode calls of ``result`` (the migration of ``tree``), at the original's positions: each
    mode call of the original as the migration writes it, and each inserted ``set_train()`` at the
    end of the statement it follows."""
    converted = {(s.line, s.column): s for s in result.sites if s.kind == "mode" and s.converted}
    out = []
    for call in mode_calls(tree):
        if (call.line, call.column) in converted:
            out.append(ModeCall(call.scope, call.receiver, "set_train", call.mode, call.line, call.column,
                                f"the original's {call.text}"))
        else:
            out.append(replace(call, origin=f"the original's {call.text}, left as it is"))
    scopes = _scopes(tree)
    for site in result.sites:
        if site.kind == "set_train" and site.converted and site.target:
            out.append(ModeCall(_scope_at(scopes, site.line), _normalised(site.target), "set_train", "True",
                                site.end_line, site.end_column,
                                f"inserted: the original uses {site.target} before any train()/eval(), "
                                f"in torch's default training mode"))
    return sorted(out, key=lambda c: (c.line, c.column))


def _normalised(expression: str) -> str:
    """An expression as ast.unparse spells it (as the receivers of the calls found in the files)."""
    try:
        return ast.unparse(ast.parse(expression.strip(), mode="eval").body)
    except SyntaxError:
        return expression


def _scopes(tree: ast.Module) -> list[tuple[int, int, str]]:
    """(first line, last line, dotted name) of every function and class."""
    out = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{scope}.{child.name}" if scope else child.name
                out.append((child.body[0].lineno, child.end_lineno, name))
                visit(child, name)
            else:
                visit(child, scope)

    visit(tree, "")
    return out


def _scope_at(scopes: list[tuple[int, int, str]], line: int) -> str:
    inside = [s for s in scopes if s[0] <= line <= s[1]]
    return max(inside, key=lambda s: s[2].count("."))[2] if inside else ""


def check_modes(planned: list[ModeCall], actual: list[ModeCall], *, path: str | None,
                migrated_path: str | None) -> list[SiteCheck]:
    """One check per planned mode call and per unplanned mode call of the migrated file, paired per
    receiver in order; FAIL where the migrated file does not make the planned call."""
    groups: dict[tuple[str, str], tuple[list[ModeCall], list[ModeCall]]] = {}
    for call in planned:
        groups.setdefault((call.scope, call.receiver), ([], []))[0].append(call)
    for call in actual:
        groups.setdefault((call.scope, call.receiver), ([], []))[1].append(call)
    checks = []
    for want, got in groups.values():
        matcher = difflib.SequenceMatcher(a=[c.mode for c in want], b=[c.mode for c in got], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            for plan, made in zip_longest(want[i1:i2], got[j1:j2]):
                same = tag == "equal" and _same_method(plan, made)
                checks.append(_check(plan, made, PASS if same else FAIL, path, migrated_path))
    return sorted(checks, key=lambda c: (c.line, c.migrated_line or 0))


def _same_method(plan: ModeCall, made: ModeCall) -> bool:
    """A call the migration converts must be ``set_train`` (a MindSpore Cell has no train()/eval());
    one it leaves alone (a receiver not known to be a module) may have been converted by hand."""
    return made.method == "set_train" or made.method == plan.method and plan.method != "set_train"


def _check(plan: ModeCall | None, made: ModeCall | None, status: str, path: str | None,
           migrated_path: str | None) -> SiteCheck:
    if plan is None:
        reason = (f"the migrated file calls {made.text}, which the migration of the original does not "
                  f"(its mode calls on {made.receiver} differ)")
    elif made is None:
        reason = f"the migrated file does not call {plan.text} ({plan.origin})"
    elif status == FAIL:
        reason = f"the migrated file calls {made.text} where the migration calls {plan.text} ({plan.origin})"
    else:
        reason = ""
    return SiteCheck(
        path if plan is not None else migrated_path, plan.line if plan is not None else made.line, LAYER, None,
        plan.text if plan is not None else "", made.text if made is not None else None, status, reason,
        migrated_path=migrated_path if made is not None else None,
        migrated_line=made.line if made is not None else None)
