"""Named value converters: how one torch argument value becomes a MindSpore argument value.

Rules name these in ``convert = "..."``. A converter looks at the argument's ``ast`` node and
returns what to do with it; it never edits text itself. Replacements are functions of the
argument's text *after* the edits inside it (so ``1 - (expr)`` wraps an already-migrated ``expr``).
"""

from __future__ import annotations

import ast
import decimal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .engine import Migration, Site
    from .ruleset import LayerRule, ParamSpec


@dataclass(frozen=True)
class Conversion:
    action: str  # keep | omit | replace | fail
    render: Callable[[str], str] | None = None
    code: str | None = None
    message: str | None = None
    warnings: tuple[tuple[str, str], ...] = field(default=())  # (code, message) findings to report


KEEP = Conversion("keep")
OMIT = Conversion("omit")


def replace(render: Callable[[str], str], *warnings: tuple[str, str]) -> Conversion:
    return Conversion("replace", render=render, warnings=tuple(warnings))


def fail(code: str, message: str) -> Conversion:
    return Conversion("fail", code=code, message=message)


@dataclass
class Arg:
    """One argument of a call being converted."""

    node: ast.expr
    param: "ParamSpec"
    rule: "LayerRule"
    mig: "Migration"
    site: "Site"

    @property
    def text(self) -> str:
        return self.mig.text.segment(self.node)


# ---------------------------------------------------------------------------------------------
# Literals and precedence


def literal_number(node: ast.expr, segment: Callable[[ast.AST], str]) -> decimal.Decimal | None:
    """The exact decimal value of a numeric literal as written (``0.1`` is 1/10, not a binary float)."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.op, ast.USub):
            sign = -sign
        node = node.operand
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
        return None
    if isinstance(node.value, int):
        return sign * decimal.Decimal(node.value)
    if isinstance(node.value, float):
        try:
            return sign * decimal.Decimal(segment(node).replace("_", ""))
        except decimal.InvalidOperation:
            return sign * decimal.Decimal(repr(node.value))
    return None


def is_int_literal(node: ast.expr) -> bool:
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def format_decimal(value: decimal.Decimal) -> str:
    """A float literal for an exact decimal: 0.9, 0.997, 1.0 (never 0.30000000000000004)."""
    text = format(value.normalize(), "f")
    if "." not in text:
        text += ".0"
    return text


# Precedence of expression kinds, lowest first (Python's grammar). Binary minus sits at ARITH.
_LAMBDA, _IFEXP, _OR, _AND, _NOT, _CMP, _BOR, _BXOR, _BAND, _SHIFT, _ARITH, _TERM, _UNARY, _POWER, _ATOM = range(15)

_BINOP = {
    ast.BitOr: _BOR, ast.BitXor: _BXOR, ast.BitAnd: _BAND, ast.LShift: _SHIFT, ast.RShift: _SHIFT,
    ast.Add: _ARITH, ast.Sub: _ARITH, ast.Mult: _TERM, ast.Div: _TERM, ast.FloorDiv: _TERM,
    ast.Mod: _TERM, ast.MatMult: _TERM, ast.Pow: _POWER,
}


def precedence(node: ast.expr) -> int:
    if isinstance(node, ast.NamedExpr):
        return _LAMBDA - 1
    if isinstance(node, ast.Lambda):
        return _LAMBDA
    if isinstance(node, ast.IfExp):
        return _IFEXP
    if isinstance(node, ast.BoolOp):
        return _OR if isinstance(node.op, ast.Or) else _AND
    if isinstance(node, ast.UnaryOp):
        return _NOT if isinstance(node.op, ast.Not) else _UNARY
    if isinstance(node, ast.Compare):
        return _CMP
    if isinstance(node, ast.BinOp):
        return _BINOP[type(node.op)]
    if isinstance(node, ast.Await):
        return _POWER
    return _ATOM


def operand(node: ast.expr, text: str, tighter_than: int) -> str:
    """``text`` parenthesised only if its precedence does not bind tighter than the operator."""
    return text if precedence(node) > tighter_than else f"({text})"


# ---------------------------------------------------------------------------------------------
# Converters


def identity(arg: Arg) -> Conversion:
    return KEEP


def one_minus(arg: Arg) -> Conversion:
    """torch momentum m weights the new batch statistic; MindSpore's weights the old value: 1 - m."""
    node = arg.node
    if isinstance(node, ast.Constant) and node.value is None:
        return fail("BN003", "momentum=None (cumulative moving average) has no MindSpore equivalent")
    number = literal_number(node, arg.mig.text.segment)
    if number is not None:
        with decimal.localcontext() as ctx:
            ctx.prec = 200
            folded = format_decimal(1 - number)
        return replace(lambda _text: folded)
    # Right operand of binary minus: parenthesise anything that does not bind tighter than `-`.
    return replace(lambda text: f"1 - {operand(node, text, _ARITH)}")


def track_running_stats(arg: Arg) -> Conversion:
    """torch track_running_stats=False always normalises with batch statistics: MindSpore's
    use_batch_statistics=True. True is MindSpore's default (None). Meanings are inverted."""
    node = arg.node
    if isinstance(node, ast.Constant) and node.value is True:
        return OMIT
    if isinstance(node, ast.Constant) and node.value in (False, None):
        return replace(lambda _text: "True")
    # The condition of a conditional expression binds tighter than lambda and if-else.
    return replace(lambda text: f"None if {operand(node, text, _IFEXP)} else True")


def to_float(arg: Arg) -> Conversion:
    """MindSpore insists on a float: an int literal becomes a float literal of the same value."""
    if is_int_literal(arg.node):
        folded = format_decimal(literal_number(arg.node, arg.mig.text.segment))
        return replace(lambda _text: folded)
    return KEEP


def dtype(arg: Arg) -> Conversion:
    node = arg.node
    if isinstance(node, ast.Constant) and node.value is None:
        return OMIT  # both default to float32
    ref = arg.mig.ref(node)
    if ref is not None and ref.qual in arg.mig.rules.dtypes:
        arg.mig.convert_ref(arg.site, ref, arg.mig.rules.dtypes[ref.qual])
        return KEEP
    return Conversion("keep", warnings=(("TM004", f"dtype={arg.text} is passed through: it must be a MindSpore dtype (e.g. mindspore.float32)"),))


CONVERTERS: dict[str, Callable[[Arg], Conversion]] = {
    "identity": identity,
    "one_minus": one_minus,
    "track_running_stats": track_running_stats,
    "float": to_float,
    "dtype": dtype,
}


def describe(name: str) -> str:
    """The first line of a converter's docstring, for the generated mapping table."""
    fn = CONVERTERS[name]
    return (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
