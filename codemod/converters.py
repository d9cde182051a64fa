"""Named value converters: how one torch argument value becomes a MindSpore argument value.

Rules name these in ``convert = "..."`` (and ``when_omitted = "..."``). A converter is a function of
the argument (its ``ast`` node, its text, the other arguments of the call) that returns what becomes
of it, as data: kept, omitted, refused with a finding, or a new value written as a template
(plan.py: ``{value}`` is the value as written, after its own changes, so ``1 - ({value})`` wraps an
already-migrated expression). Converters never edit anything; the constructions pass does.
"""

from __future__ import annotations

import ast
import decimal
import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:
    from .ruleset import LayerRule, ParamSpec


class Action(enum.Enum):
    KEEP = "keep"
    OMIT = "omit"
    FAIL = "fail"
    REPLACE = "replace"  # the value becomes ``value`` (a template with a ``{value}`` hole, or a literal)
    DERIVE = "derive"  # a new value built from other arguments: ``value`` with ``{arg:<param>}`` holes


@dataclass(frozen=True)
class Conversion:
    """What happens to one argument.

    ``names``: (hole, MindSpore name) pairs the template spells (``{name:ones_like}``);
    ``reference``: the value is a torch name that becomes this MindSpore name (``torch.float32``);
    ``warnings``: (code, message) findings to report; ``adds``: further MindSpore keyword arguments
    this value needs (keyword, value text)."""

    action: Action
    value: str | None = None
    names: tuple[tuple[str, str], ...] = ()
    reference: str | None = None
    code: str | None = None
    message: str | None = None
    warnings: tuple[tuple[str, str], ...] = field(default=())
    adds: tuple[tuple[str, str], ...] = field(default=())


KEEP = Conversion(Action.KEEP)
OMIT = Conversion(Action.OMIT)


def replace(value: str, *warnings: tuple[str, str]) -> Conversion:
    return Conversion(Action.REPLACE, value=value, warnings=tuple(warnings))


def fail(code: str, message: str) -> Conversion:
    return Conversion(Action.FAIL, code=code, message=message)


@dataclass(frozen=True)
class Arg:
    """One argument of a call being converted (``node`` is None when the call omits it), with what a
    converter may need to know about the call."""

    node: ast.expr | None
    text: str  # the value as written ("" when omitted)
    param: "ParamSpec"
    rule: "LayerRule"
    dtypes: Mapping[str, str]  # torch dtype -> MindSpore dtype
    titles: Mapping[str, str]  # finding code -> its title
    reference: str | None = None  # the torch name the value spells, if it is one
    bound: Mapping[str, ast.expr] = field(default_factory=dict)  # torch parameter -> value, whole call (**dict entries too)
    call_lines: tuple[str, ...] = ()  # the source lines of the call (for hints written on them)
    # A parameter of a function of the file: what the file gives it (its default, the calls' arguments).
    passed: tuple[ast.expr, ...] = ()
    segment: Callable[[ast.AST], str] = str  # the source text of a node of the call
    target: str | None = None  # what the call's result is assigned to (``x`` of ``x = F.relu(x)``), if anything
    positional: bool = True  # the argument is given by position (not by keyword)
    # The parameters the call passes itself, which a DERIVE template may name (``{arg:<param>}``);
    # None: every one of ``bound``.
    holes: frozenset[str] | None = None


def _may_be_given_none(arg: Arg) -> bool:
    """Whether the value is a parameter that the file may give None (its default, or a call)."""
    return any(_is_none(v) for v in arg.passed)


def _hole(arg: Arg, param: str) -> bool:
    """Whether a DERIVE template may name ``param`` (the call passes it itself, not through a **dict)."""
    return param in (arg.bound if arg.holes is None else arg.holes)


def escape(text: str) -> str:
    """Source text written into a template as it is (braces are template syntax)."""
    return text.replace("{", "{{").replace("}", "}}")


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


def decimal_literal(value: decimal.Decimal) -> str:
    """A float literal for an exact decimal, in scientific notation when it is very small or large
    (1e-24, not 0.000000000000000000000001)."""
    value = value.normalize()
    if -5 <= value.adjusted() < 16:
        return format_decimal(value)
    sign, digits, _exponent = value.as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return ("-" if sign else "") + f"{mantissa}e{value.adjusted()}"


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


def operand(node: ast.expr, tighter_than: int) -> str:
    """The ``{value}`` hole, parenthesised only if the value does not bind tighter than the operator."""
    return "{value}" if precedence(node) > tighter_than else "({value})"


# ---------------------------------------------------------------------------------------------
# Converters


def identity(arg: Arg) -> Conversion:
    """unchanged"""
    return KEEP


def one_minus(arg: Arg) -> Conversion:
    """m -> 1 - m (literals folded exactly); None -> error BN003

    torch's momentum weights the new batch statistic, MindSpore's weights the old value."""
    node = arg.node
    if isinstance(node, ast.Constant) and node.value is None:
        return fail("BN003", "momentum=None (cumulative moving average) has no MindSpore equivalent")
    if _may_be_given_none(arg):
        return fail("BN003", f"momentum={arg.text} may be None here (its default, or a call of the function "
                             f"passes None): a cumulative moving average has no MindSpore equivalent")
    number = literal_number(node, arg.segment)
    if number is not None:
        with decimal.localcontext() as ctx:
            ctx.prec = 200
            return replace(format_decimal(1 - number))
    # Right operand of binary minus: parenthesise anything that does not bind tighter than `-`.
    return replace(f"1 - {operand(node, _ARITH)}")


def track_running_stats(arg: Arg) -> Conversion:
    """True -> omitted; False -> True; e -> None if e else True (the meanings are inverted)

    torch's track_running_stats=False always normalises with batch statistics: MindSpore's
    use_batch_statistics=True. True is MindSpore's default (None)."""
    node = arg.node
    if isinstance(node, ast.Constant) and node.value is True:
        return OMIT
    if isinstance(node, ast.Constant) and node.value in (False, None):
        return replace("True")
    # The condition of a conditional expression binds tighter than lambda and if-else.
    return replace(f"None if {operand(node, _IFEXP)} else True")


def to_float(arg: Arg) -> Conversion:
    """an int literal becomes a float literal, an expression that may be an int float(e) (MindSpore insists on a float)"""
    if is_int_literal(arg.node):
        return float_literal(arg)
    if not may_be_int(arg.node):
        return KEEP
    return replace(f"float({escape(arg.text)})")


def may_be_int(node: ast.expr | None) -> bool:
    """Whether a value given where MindSpore takes a float only may be an int (which it refuses)."""
    return not (node is None or _is_none(node) or certainly_float(node))


def float_literal(arg: Arg) -> Conversion:
    """an int literal becomes a float literal (MindSpore takes an int too: other values as they are)"""
    if is_int_literal(arg.node):
        return replace(format_decimal(literal_number(arg.node, arg.segment)))
    return KEEP


def certainly_float(node: ast.expr) -> bool:
    """A float whenever it is a number: float literals, true division, float(...), arithmetic on a float."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, float)
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ast.Div) or certainly_float(node.left) or certainly_float(node.right)
    if isinstance(node, ast.UnaryOp):
        return certainly_float(node.operand)
    if isinstance(node, ast.IfExp):
        return certainly_float(node.body) and certainly_float(node.orelse)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"


def dtype(arg: Arg) -> Conversion:
    """torch.float32 -> mindspore.float32 (and the other float dtypes); None -> omitted; else TM004"""
    node = arg.node
    if isinstance(node, ast.Constant) and node.value is None:
        return OMIT  # both default to float32
    if arg.reference is not None and arg.reference in arg.dtypes:
        return Conversion(Action.KEEP, reference=arg.dtypes[arg.reference], warnings=_dtype_notes(arg))
    return Conversion(Action.KEEP, warnings=(("TM004", f"dtype={arg.text} is passed through: it must be a MindSpore "
                                                       f"dtype (e.g. mindspore.float32)"),))


def _plain_reference(node: ast.expr | None) -> bool:
    """A name, attribute chain or subscript of them: safe to mention twice."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, (ast.Constant, ast.Name)):
            return False
        node = node.value
    return isinstance(node, ast.Name)


def required_tensor(arg: Arg) -> Conversion:
    """None (or an expression that may be None) -> error FB001 (MindSpore needs tensors)"""
    if _may_be_none(arg.node):
        return fail("FB001", f"{arg.param.name}={arg.text}: MindSpore's batch_norm needs running statistics as "
                             f"tensors, never None; pass tensors (e.g. zeros/ones of the channel count) by hand")
    return KEEP


def _may_be_none(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.IfExp):
        return _may_be_none(node.body) or _may_be_none(node.orelse)
    if isinstance(node, ast.BoolOp):
        return any(_may_be_none(v) for v in node.values)
    return False


def _like_running_mean(function: str, filler: str):
    def convert(arg: Arg) -> Conversion:
        if arg.node is not None and not (isinstance(arg.node, ast.Constant) and arg.node.value is None):
            return KEEP
        running_mean = arg.bound.get("running_mean")
        if running_mean is None or not _plain_reference(running_mean) or not _hole(arg, "running_mean"):
            return fail("FB002", f"{arg.param.name} is required by MindSpore's batch_norm and the channel count "
                                 f"cannot be read off running_mean here: pass {filler} of shape (C,) by hand")
        message = (f"{arg.param.name} synthesised as {function}(running_mean): torch uses {filler} when "
                   f"{arg.param.name} is None")
        return Conversion(Action.DERIVE, value="{name:f}({arg:running_mean})",
                          names=(("name:f", f"mindspore.ops.{function}"),), warnings=(("FB003", message),))

    convert.__doc__ = f"None/omitted -> mindspore.ops.{function}(running_mean) (FB003), else FB002"
    return convert


def shape_tuple(arg: Arg) -> Conversion:
    """int -> 1-tuple; a k-dim shape needs '# torch2ms: input-rank=N' on the line (else LN002)

    MindSpore wants a tuple/list and, for k > 1 dims, begin_norm_axis = begin_params_axis = rank - k
    (it rejects negative axes below -1)."""
    node = arg.node
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return replace("({value},)")
    if isinstance(node, (ast.Tuple, ast.List)) and not any(isinstance(e, ast.Starred) for e in node.elts):
        dims = len(node.elts)
        if dims <= 1:
            return KEEP
        rank = read_input_rank(arg.call_lines)
        if rank is None:
            return fail("LN002", f"normalized_shape has {dims} dims: MindSpore needs begin_norm_axis=begin_params_axis="
                                 f"<input rank> - {dims} (e.g. {4 - dims} for 4-D input). Add "
                                 f"'# torch2ms: input-rank=N' to this line and run again, or convert by hand")
        if rank < dims:
            return fail("LN002", f"input-rank={rank} is smaller than the {dims} normalized dims")
        axis = str(rank - dims)
        return Conversion(Action.KEEP, adds=(("begin_norm_axis", axis), ("begin_params_axis", axis)))
    if isinstance(node, (ast.Name, ast.Attribute, ast.BinOp, ast.Subscript, ast.Call)) and not _is_sequence_call(node):
        return replace("({value},)", ("LN001", f"normalized_shape={arg.text} converted to ({arg.text},) "
                                               f"assuming an int; if it is a sequence of sizes, write it "
                                               f"as a tuple and give the input rank"))
    return fail("LN002", f"normalized_shape={arg.text}: its length cannot be read here; MindSpore needs a tuple "
                         f"and, for more than one dim, begin_norm_axis/begin_params_axis from the input rank")


def _is_sequence_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("tuple", "list")


_RANK_HINT = re.compile(r"torch2ms:\s*input-rank\s*=\s*(\d+)")


def read_input_rank(lines) -> int | None:
    """``# torch2ms: input-rank=4`` on one of the lines of a call: the rank of the layer's input."""
    for line in lines:
        m = _RANK_HINT.search(line)
        if m:
            return int(m.group(1))
    return None


# ---------------------------------------------------------------------------------------------
# Layers (issue 15): convolutions, pooling, activations, dropout, embedding, upsampling


def _is_none(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def literal_int(node: ast.expr | None) -> int | None:
    """The value of an int literal (``-1`` included), else None."""
    if node is None or not is_int_literal(node):
        return None
    number = literal_number(node, ast.unparse)
    return int(number) if number is not None else None


def literal_ints(node: ast.expr | None, dims: int) -> tuple[int, ...] | None:
    """An int literal repeated ``dims`` times, or a tuple/list of ``dims`` int literals; else None."""
    single = literal_int(node)
    if single is not None:
        return (single,) * dims
    if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == dims:
        values = [literal_int(e) for e in node.elts]
        if all(v is not None for v in values):
            return tuple(values)
    return None


_IMPURE = (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.Lambda, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp, ast.Starred)


def plain_expression(node: ast.expr) -> bool:
    """No calls, no side effects: the same value if it is written twice."""
    return not any(isinstance(n, _IMPURE) for n in ast.walk(node))


def certainly_int(node: ast.expr) -> bool:
    """An expression that is an int whenever torch accepts it as a size: int literals, ``int(...)``,
    and arithmetic whose result cannot be a tuple (``k // 2``, ``(k - 1) // 2 * d``)."""
    if is_int_literal(node):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return certainly_int(node.operand)
    if isinstance(node, ast.IfExp):
        return certainly_int(node.body) and certainly_int(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "len", "round"):
        return True
    if isinstance(node, ast.BinOp):
        if any(isinstance(side, (ast.Tuple, ast.List, ast.Constant)) and not is_int_literal(side)
               for side in (node.left, node.right)):
            return False
        if isinstance(node.op, (ast.FloorDiv, ast.Mod, ast.Sub, ast.Pow)):
            return True  # a tuple operand makes torch's own call fail
        if isinstance(node.op, (ast.Add, ast.Mult)):  # tuple + tuple, tuple * n are tuples
            return certainly_int(node.left) and certainly_int(node.right)
    return False


def spatial_dims(rule: "LayerRule") -> int:
    return (rule.input_rank or 4) - 2


_PAD = (("pad_mode", "'pad'"),)


def conv_padding(arg: Arg) -> Conversion:
    """p -> pad_mode='pad', padding=p; (ph, pw) -> (ph, ph, pw, pw) (1-d: (p,) -> p); 'same'/'valid' -> pad_mode; omitted -> pad_mode='valid'

    MindSpore's default pad_mode is 'same' (torch's default pads nothing), and its padding tuple
    lists both sides of every dimension (Conv1d: an int)."""
    node = arg.node
    dims = spatial_dims(arg.rule)
    if node is None:
        return Conversion(Action.KEEP, adds=(("pad_mode", "'valid'"),))
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value in ("same", "valid"):
            return Conversion(Action.OMIT, adds=(("pad_mode", repr(node.value)),))
        return fail("CV001", f"padding={arg.text}: torch takes 'same' or 'valid' only")
    if isinstance(node, (ast.Tuple, ast.List)):
        if len(node.elts) != dims or not all(plain_expression(e) for e in node.elts):
            return fail("CV001", f"padding={arg.text}: expected {dims} plain entries (one per spatial dimension)")
        texts = [escape(arg.segment(e)) for e in node.elts]
        if dims == 1:
            return Conversion(Action.REPLACE, value=texts[0], adds=_PAD)
        return Conversion(Action.REPLACE, value="(" + ", ".join(t for t in texts for _ in (0, 1)) + ")", adds=_PAD)
    if certainly_int(node):
        return Conversion(Action.KEEP, adds=_PAD)
    return Conversion(Action.KEEP, adds=_PAD, warnings=(("CV002", f"padding={arg.text} is taken for an int: "
                                                                  f"{arg.titles['CV002']}"),))


def conv_transpose_padding(arg: Arg) -> Conversion:
    """as Conv padding, but omitted -> pad_mode='pad' unless 'valid' is provably the same; output_padding op folded in: (p, p - op) per dimension; op > p or non-literal -> error CV004

    MindSpore's own output_padding appends a zero row/column instead of computing it; padding the
    end less by op is exact. Its pad_mode='valid' makes (in - 1) * stride + max(kernel, stride)
    outputs where torch makes (in - 1) * stride + kernel: 'pad' with padding 0 is torch's."""
    dims = spatial_dims(arg.rule)
    op_node = arg.bound.get("output_padding")
    if dims == 1:  # Conv1dTranspose has no output_padding: its own rule reports one
        op_node = None
    op = literal_ints(op_node, dims) if op_node is not None else (0,) * dims
    if op is None:
        return fail("CV004", f"output_padding={arg.segment(op_node)} is not a literal: it cannot be folded into "
                             f"MindSpore's padding")
    if not any(op):
        if arg.node is None and not _dilated_kernel_covers_stride(arg, dims):
            return Conversion(Action.KEEP, adds=_PAD)
        return conv_padding(arg)
    padding = literal_ints(arg.node, dims) if arg.node is not None else (0,) * dims
    if padding is None:
        return fail("CV004", f"padding={arg.text} is not a literal: output_padding cannot be folded into it")
    folded = [(p, p - o) for p, o in zip(padding, op)]
    if any(end < 0 for _, end in folded):
        return fail("CV004", f"output_padding {op} is larger than padding {padding}: MindSpore cannot pad one end "
                             f"negatively")
    value = "(" + ", ".join(str(v) for pair in folded for v in pair) + ")"
    return Conversion(Action.REPLACE if arg.node is not None else Action.DERIVE, value=value, adds=_PAD)


def _dilated_kernel_covers_stride(arg: Arg, dims: int) -> bool:
    """Whether the literals show dilation * (kernel - 1) + 1 >= stride in every dimension (where
    MindSpore's pad_mode='valid' transposed convolution gives torch's shape)."""
    def ints(name: str, default: int) -> tuple[int, ...] | None:
        node = arg.bound.get(name)
        return (default,) * dims if node is None else literal_ints(node, dims)

    kernel, stride, dilation = ints("kernel_size", 0), ints("stride", 1), ints("dilation", 1)
    if kernel is None or stride is None or dilation is None:
        return False
    return all(d * (k - 1) + 1 >= s for k, s, d in zip(kernel, stride, dilation))


def folded_into_padding(arg: Arg) -> Conversion:
    """folded into padding (see padding)"""
    return OMIT


def pool_padding(arg: Arg) -> Conversion:
    """always with pad_mode='pad' (MindSpore's default 'valid' refuses padding, dilation, ceil_mode)"""
    return Conversion(Action.KEEP, adds=_PAD)


def stride_or_kernel_size(arg: Arg) -> Conversion:
    """None/omitted -> the kernel_size (torch's default; MindSpore's is 1); s that may be None -> kernel_size if s is None else s"""
    if arg.node is not None and not _is_none(arg.node) and not _may_be_given_none(arg):
        return single_size(arg)
    kernel = arg.bound.get("kernel_size")
    if kernel is None or not plain_expression(kernel) or not _hole(arg, "kernel_size"):
        what = f"kernel_size={arg.segment(kernel)}" if kernel is not None else "kernel_size (not in the call)"
        return fail("PL001", f"stride defaults to the kernel size in torch (1 in MindSpore), and {what} cannot be "
                             f"repeated here: write stride= explicitly")
    kernel_text = "{arg:kernel_size}"
    if spatial_dims(arg.rule) == 1 and _one_tuple(kernel):
        kernel_text = escape(arg.segment(kernel.elts[0]))  # MaxPool1d takes an int only
    if arg.node is not None and not _is_none(arg.node):  # a parameter that may be None
        return Conversion(Action.DERIVE, value=f"{kernel_text} if {{arg:stride}} is None else {{arg:stride}}")
    return Conversion(Action.DERIVE, value=kernel_text)


def single_size(arg: Arg) -> Conversion:
    """(k,) or [k] -> k where MindSpore takes an int only (its one-dimensional layers); a parameter a call passes a 1-tuple -> error TM015; else unchanged"""
    if spatial_dims(arg.rule) != 1:
        return KEEP
    if _one_tuple(arg.node):
        return replace(escape(arg.segment(arg.node.elts[0])))
    if any(_one_tuple(v) for v in arg.passed):
        return fail("TM015", f"{arg.param.name}={arg.text}: {arg.titles['TM015']}")
    return KEEP


def _one_tuple(node: ast.expr | None) -> bool:
    return isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == 1 and not isinstance(node.elts[0], ast.Starred)


def gelu_approximate(arg: Arg) -> Conversion:
    """'none' -> False, 'tanh' -> True, e -> e == 'tanh' (MindSpore's nn.GELU takes a bool; its default is True)"""
    node = arg.node
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value in ("none", "tanh"):
            return replace("True" if node.value == "tanh" else "False")
        return fail("TM003", f"approximate={arg.text}: torch takes 'none' or 'tanh'")
    return replace(f"{operand(node, _CMP)} == 'tanh'")


def softmax_dim(arg: Arg) -> Conversion:
    """None/omitted -> torch's implicit dim (0 for input rank 0, 1, 3; else 1), from '# torch2ms: input-rank=N' (else SM001)

    MindSpore's default axis is -1. A dim that may be None (a parameter: its default, a call) ->
    the implicit dim if it is None."""
    if arg.node is not None and not _is_none(arg.node) and not _may_be_given_none(arg):
        return KEEP
    rank = read_input_rank(arg.call_lines)
    if rank is None:
        without = "without dim" if arg.node is None or _is_none(arg.node) else f"with dim={arg.text} (may be None)"
        return fail("SM001", f"{arg.rule.torch_name} {without}: torch picks the dim from the input's rank (0 for "
                             f"rank 0, 1 and 3, else 1), MindSpore uses -1. Write dim=, or add "
                             f"'# torch2ms: input-rank=N' to this line and run again")
    axis = "0" if rank in (0, 1, 3) else "1"
    if arg.node is not None and not _is_none(arg.node):
        return replace(f"{axis} if {escape(arg.text)} is None else {escape(arg.text)}")
    return Conversion(Action.REPLACE if arg.node is not None else Action.DERIVE, value=axis)


def elu_alpha(arg: Arg) -> Conversion:
    """a float (as the float converter); alpha != 1 -> warning AC002 (no CPU kernel)"""
    converted = to_float(arg)
    number = literal_number(arg.node, arg.segment) if arg.node is not None else None
    if number == 1:
        return converted
    return Conversion(converted.action, value=converted.value,
                      warnings=(("AC002", f"alpha={arg.text}: {arg.titles['AC002']}"),))


def dropout_p(arg: Arg) -> Conversion:
    """an int literal becomes a float literal; p >= 1 (written, or passed to the parameter it is) -> error DR001 (MindSpore's Dropout takes an int p too)"""
    number = literal_number(arg.node, arg.segment)
    if number is not None and number >= 1:
        return fail("DR001", f"p={arg.text}: {arg.titles['DR001']}")
    if any((n := literal_number(v, arg.segment)) is not None and n >= 1 for v in arg.passed):
        return fail("DR001", f"p={arg.text} may be 1 or more here (its default, or a call of the function passes "
                             f"it): {arg.titles['DR001']}")
    return float_literal(arg)


def embedding_table(arg: Arg) -> Conversion:
    """None/omitted -> Normal(sigma=1.0), torch's N(0, 1) (MindSpore draws N(0, 0.01)); a tensor -> warning EM002"""
    if arg.node is None or _is_none(arg.node):
        return Conversion(Action.DERIVE, value="{name:normal}(sigma=1.0)",
                          names=(("name:normal", "mindspore.common.initializer.Normal"),))
    return Conversion(Action.KEEP, warnings=(("EM002", f"_weight={arg.text}: {arg.titles['EM002']}"),))


def padding_idx(arg: Arg) -> Conversion:
    """None -> omitted; a negative literal i -> num_embeddings + i (MindSpore refuses it); any -> warning EM001 (MindSpore lets the row train)"""
    if _is_none(arg.node):
        return OMIT
    warnings = (("EM001", f"padding_idx={arg.text}: {arg.titles['EM001']}"),)
    index = literal_int(arg.node)
    if index is None or index >= 0:
        return Conversion(Action.KEEP, warnings=warnings)
    count = arg.bound.get("num_embeddings")
    if literal_int(count) is not None:
        return Conversion(Action.REPLACE, value=str(literal_int(count) + index), warnings=warnings)
    if count is None or not plain_expression(count) or not _hole(arg, "num_embeddings"):
        return fail("EM006", f"padding_idx={arg.text}: {arg.titles['EM006']}")
    hole = operand(count, _ARITH).replace("value", "arg:num_embeddings")
    return Conversion(Action.DERIVE, value=f"{hole} - {-index}", warnings=warnings)


def _literal_scales(node: ast.expr, segment) -> tuple[list[decimal.Decimal], bool] | None:
    """The numbers of a scale literal and whether it is a tuple; None when it is not a literal."""
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [literal_number(e, segment) for e in node.elts]
        return (values, True) if values and all(v is not None for v in values) else None
    value = literal_number(node, segment)
    return ([value], False) if value is not None else None


def _is_literal(node: ast.expr | None, value) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is type(value) and node.value == value


def scale_factor(arg: Arg) -> Conversion:
    """integer-valued s -> float(s) and recompute_scale_factor=True (exact); other scales -> error UP001 unless torch recomputes too (or bilinear with align_corners=True)

    MindSpore refuses an int scale and needs recompute_scale_factor=True, which samples at in/out
    instead of 1/scale: the same points only for integer-valued scales."""
    node = arg.node
    if _is_none(node):
        return KEEP
    recompute = arg.bound.get("recompute_scale_factor")
    adds = () if recompute is not None else (("recompute_scale_factor", "True"),)
    exact_anyway = _is_literal(recompute, True) or (
        _is_literal(arg.bound.get("mode"), "bilinear") and _is_literal(arg.bound.get("align_corners"), True))
    scales = _literal_scales(node, arg.segment)
    if scales is None:
        if _is_literal(recompute, True):
            return KEEP
        return fail("UP001", f"scale_factor={arg.text} is not a literal: MindSpore equals torch only for "
                             f"integer-valued scales; write the number, or size=")
    values, is_tuple = scales
    if not exact_anyway and any(v != v.to_integral_value() for v in values):
        return fail("UP001", f"scale_factor={arg.text}: MindSpore samples a non-integer scale at other points "
                             f"than torch; use size= (or torch's recompute_scale_factor=True)")
    texts = [format_decimal(v) for v in values]
    value = ("(" + ", ".join(texts) + ("," if len(texts) == 1 else "") + ")") if is_tuple else texts[0]
    return Conversion(Action.REPLACE, value=value, adds=adds)


def recompute_scale_factor(arg: Arg) -> Conversion:
    """True whenever a scale_factor is given (MindSpore needs it; see scale_factor)"""
    scale = arg.bound.get("scale_factor")
    if scale is None or _is_none(scale) or _is_literal(arg.node, True):
        return KEEP
    return replace("True")


EXACT_INTERPOLATION = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")


def interpolation_mode(arg: Arg) -> Conversion:
    """nearest, nearest-exact, linear, bilinear, trilinear, area kept; bicubic or a non-literal -> error UP002"""
    node = arg.node
    if isinstance(node, ast.Constant) and node.value in EXACT_INTERPOLATION:
        return KEEP
    return fail("UP002", f"mode={arg.text}: {arg.titles['UP002']}")


def divisible_output_size(arg: Arg) -> Conversion:
    """1 kept; any other size -> warning PL002 (MindSpore raises unless it divides the length)"""
    if literal_int(arg.node) == 1:
        return KEEP
    return Conversion(Action.KEEP, warnings=(("PL002", f"output_size={arg.text}: {arg.titles['PL002']}"),))
def _literal(node: ast.expr | None) -> bool:
    """A number, string, True/False/None, or a tuple/list of them."""
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_literal(e) for e in node.elts)
    return isinstance(node, ast.Constant) or literal_number(node, str) is not None


def omit_none(arg: Arg) -> Conversion:
    """None -> omitted (MindSpore's default means the same)"""
    return OMIT if _is_none(arg.node) else KEEP


def implicit_dim(arg: Arg) -> Conversion:
    """None/omitted -> error FN002 (torch picks the axis from the input's rank)"""
    if arg.node is None or _is_none(arg.node):
        given = f"{arg.param.name}=None" if arg.node is not None else f"{arg.param.name} omitted"
        return fail("FN002", f"{given}: torch picks the axis from the input's rank (0 for rank 0, 1 and 3, "
                             f"else 1), MindSpore uses -1: give {arg.param.name} explicitly")
    return KEEP


def stride_from_kernel(arg: Arg) -> Conversion:
    """None/omitted -> kernel_size (MindSpore's default stride is 1)"""
    if arg.node is not None and not _is_none(arg.node):
        return KEEP
    kernel = arg.bound.get("kernel_size")
    if kernel is None or not (_literal(kernel) or _plain_reference(kernel)) or not _hole(arg, "kernel_size"):
        return fail("FN005", f"{arg.param.name} defaults to kernel_size in torch, to 1 in MindSpore, and kernel_size "
                             f"is not a literal or a name here: write {arg.param.name}= explicitly")
    return Conversion(Action.DERIVE, value="{arg:kernel_size}")


def inplace(arg: Arg) -> Conversion:
    """False -> omitted; True -> omitted where the result is assigned back to the input (x = f(x, inplace=True)), else error FN003"""
    if isinstance(arg.node, ast.Constant) and arg.node.value is False:
        return OMIT
    first = arg.bound.get("input")
    if arg.target is not None and first is not None and arg.segment(first) == arg.target:
        return Conversion(Action.OMIT, warnings=(("TM010", f"{arg.param.name}={arg.text} dropped: the result is "
                                                           f"assigned back to {arg.target}"),))
    return fail("FN003", f"{arg.param.name}={arg.text}: torch changes the input in place, MindSpore returns a new "
                         f"tensor; assign the result to the input (x = f(x)) or convert by hand")


_INTERPOLATE_MODES = ("nearest", "linear", "bilinear", "trilinear", "area", "nearest-exact")


def interpolate_mode(arg: Arg) -> Conversion:
    """a literal mode other than 'bicubic' -> as is; else error FN004 (MindSpore's cubic kernel differs)"""
    if isinstance(arg.node, ast.Constant) and arg.node.value in _INTERPOLATE_MODES:
        return KEEP
    return fail("FN004", f"mode={arg.text}: only the literal modes {', '.join(map(repr, _INTERPOLATE_MODES))} "
                         f"interpolate as torch does (MindSpore's bicubic kernel differs)")


def _scale_literals(node: ast.expr) -> list[decimal.Decimal] | None:
    items = node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node]
    values = [literal_number(n, str) for n in items]
    return None if any(v is None for v in values) else values


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _exact_scale(arg: Arg, values: list[decimal.Decimal]) -> bool:
    """Whether MindSpore's scale_factor (which it uses with recompute_scale_factor=True) samples as torch
    does: for integer scales, for torch's own recompute_scale_factor=True, or for bilinear with
    align_corners=True."""
    mode, corners = arg.bound.get("mode"), arg.bound.get("align_corners")
    return (all(v == v.to_integral_value() for v in values) or _is_true(arg.bound.get("recompute_scale_factor"))
            or (isinstance(mode, ast.Constant) and mode.value == "bilinear" and _is_true(corners)))


def interpolate_scale(arg: Arg) -> Conversion:
    """a literal -> float literal(s) (MindSpore refuses ints); exact for integer scales, else error FN004 (unless bilinear with align_corners=True)"""
    node = arg.node
    if node is None or _is_none(node):
        return KEEP
    values = _scale_literals(node)
    if values is None:
        return fail("FN004", f"scale_factor={arg.text}: MindSpore samples as torch only for integer scales; "
                             f"write a literal, or size= instead")
    if not _exact_scale(arg, values):
        return fail("FN004", f"scale_factor={arg.text}: MindSpore samples at input/output size, torch at 1/scale: "
                             f"they differ for non-integer scales; use size= instead")
    floats = [format_decimal(v) for v in values]
    if isinstance(node, (ast.Tuple, ast.List)):
        return replace("(" + ", ".join(floats) + ("," if len(floats) == 1 else "") + ")")
    return replace(floats[0])


def interpolate_recompute(arg: Arg) -> Conversion:
    """True whenever scale_factor is given (MindSpore needs it; with the scales interpolate_scale admits, it samples as torch)"""
    if arg.bound.get("scale_factor") is None or _is_none(arg.bound.get("scale_factor")):
        return KEEP
    if _is_true(arg.node):
        return KEEP
    if arg.node is None:
        return Conversion(Action.DERIVE, value="True")
    if isinstance(arg.node, ast.Constant):  # None or False
        return replace("True")
    return fail("FN004", f"recompute_scale_factor={arg.text}: MindSpore needs True with a scale_factor")


def square(arg: Arg) -> Conversion:
    """eps -> eps ** 2 (literals folded exactly): MindSpore bounds the squared norm"""
    number = literal_number(arg.node, arg.segment)
    if number is not None:
        with decimal.localcontext() as ctx:
            ctx.prec = 200
            return replace(decimal_literal(number * number))
    return replace(f"{operand(arg.node, _POWER)} ** 2")


def dtype_reference(arg: Arg) -> Conversion:
    """a torch dtype -> the MindSpore dtype; anything else as it is"""
    if arg.reference is not None and arg.reference in arg.dtypes:
        return Conversion(Action.KEEP, reference=arg.dtypes[arg.reference], warnings=_dtype_notes(arg))
    return KEEP


def _dtype_notes(arg: Arg) -> tuple[tuple[str, str], ...]:
    """The finding the rule attaches to this dtype (``"*"``: to any dtype), if any."""
    note = arg.rule.dtype_notes.get(arg.reference) or arg.rule.dtype_notes.get("*")
    return ((note, f"{arg.param.name}={arg.text}: {arg.titles[note]}"),) if note is not None else ()


def _device_like(node: ast.expr, reference: str | None) -> bool:
    """A device as torch code spells it: a string, ``torch.device(...)``, ``<anything>.device``, a name
    ``device`` (or a conditional between them)."""
    if isinstance(node, ast.IfExp):
        return _device_like(node.body, None) and _device_like(node.orelse, None)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) or node.value is None
    if isinstance(node, ast.Call):
        return isinstance(node.func, (ast.Attribute, ast.Name)) and dotted_tail(node.func) == "device"
    return dotted_tail(node) == "device"


def dotted_tail(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def device_or_dtype(arg: Arg) -> Conversion:
    """a torch dtype -> the MindSpore dtype; a device (a string, torch.device(...), *.device, a name device) -> dropped (TS001); else passed through (TS003)"""
    node = arg.node
    if arg.reference is not None and arg.reference in arg.dtypes and arg.positional:
        return Conversion(Action.KEEP, reference=arg.dtypes[arg.reference])
    if not arg.positional or _device_like(node, arg.reference):
        return Conversion(Action.OMIT, warnings=(("TS001", f"to({arg.text}): device move dropped (MindSpore places "
                                                           f"tensors by context)"),))
    if dotted_tail(node) == "dtype":  # x.to(y.dtype): a MindSpore dtype once y is a MindSpore tensor
        return KEEP
    return Conversion(Action.KEEP, warnings=(("TS003", f"{arg.text} is passed through to MindSpore's to(): "
                                                       f"a dtype or a tensor is fine, a device must be removed"),))


CONVERTERS: dict[str, Callable[[Arg], Conversion]] = {
    "identity": identity,
    "one_minus": one_minus,
    "track_running_stats": track_running_stats,
    "float": to_float,
    "float_literal": float_literal,
    "single_size": single_size,
    "dtype": dtype,
    "required_tensor": required_tensor,
    "ones_like_running_mean": _like_running_mean("ones_like", "ones"),
    "zeros_like_running_mean": _like_running_mean("zeros_like", "zeros"),
    "shape_tuple": shape_tuple,
    "conv_padding": conv_padding,
    "conv_transpose_padding": conv_transpose_padding,
    "folded_into_padding": folded_into_padding,
    "pool_padding": pool_padding,
    "stride_or_kernel_size": stride_or_kernel_size,
    "gelu_approximate": gelu_approximate,
    "softmax_dim": softmax_dim,
    "elu_alpha": elu_alpha,
    "dropout_p": dropout_p,
    "embedding_table": embedding_table,
    "padding_idx": padding_idx,
    "scale_factor": scale_factor,
    "recompute_scale_factor": recompute_scale_factor,
    "interpolation_mode": interpolation_mode,
    "divisible_output_size": divisible_output_size,
    "omit_none": omit_none,
    "implicit_dim": implicit_dim,
    "stride_from_kernel": stride_from_kernel,
    "inplace": inplace,
    "interpolate_mode": interpolate_mode,
    "interpolate_scale": interpolate_scale,
    "interpolate_recompute": interpolate_recompute,
    "square": square,
    "dtype_reference": dtype_reference,
    "device_or_dtype": device_or_dtype,
}


def describe(name: str) -> str:
    """The first line of a converter's docstring, for the generated mapping table."""
    fn = CONVERTERS[name]
    return (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
