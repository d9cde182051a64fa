"""A small, safe evaluator for the argument expressions of a call: literals, arithmetic,
comparisons, boolean logic, conditional expressions, a few pure builtins, names bound by the caller
and dtype constants. User code is never run with ``eval``/``exec``.

No framework is imported here: dtypes are framework-neutral ``DType`` values, turned into
``torch.float32`` or ``mindspore.float32`` only when a layer is built.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any, Mapping

# The dtype attribute names torch and MindSpore share, to the canonical name.
DTYPE_NAMES = {
    "float32": "float32", "float": "float32", "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "float64": "float64", "double": "float64",
}
FRAMEWORK_ROOTS = ("torch", "mindspore")


class NotEvaluable(Exception):
    """The expression uses something the evaluator does not know; ``free`` lists unbound references."""

    def __init__(self, message: str, free: tuple[str, ...] = ()):
        super().__init__(message)
        self.free = free


@dataclass(frozen=True)
class DType:
    """A dtype constant. ``framework`` is where the source's name points (None: a sample, valid
    in either framework)."""

    name: str
    framework: str | None = None

    def __repr__(self) -> str:
        return f"{self.framework or '<any>'}.{self.name}"


@dataclass(frozen=True)
class TensorSample:
    """A free name bound to a tensor (arguments of normalization functions): ``role`` says which
    (input, mean, var, weight, bias); the check makes one tensor of it per framework."""

    role: str
    name: str = ""

    def __repr__(self) -> str:
        return f"<{self.role} tensor>"


@dataclass(frozen=True)
class Filled:
    """``ones_like(t)`` / ``zeros_like(t)`` of either framework."""

    value: float
    like: Any


@dataclass(frozen=True)
class Initializer:
    """``mindspore.common.initializer.Normal(sigma=1.0)`` and its kind: made when the layer is built."""

    name: str
    args: tuple = ()
    kwargs: tuple = ()  # (keyword, value) pairs

    def __repr__(self) -> str:
        parts = [*map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs)]
        return f"{self.name}({', '.join(parts)})"


INITIALIZER_MODULE = "mindspore.common.initializer"

# Tensor constructors an argument may use, by their last name, in either framework.
_FILLED = {"ones_like": 1.0, "zeros_like": 0.0}

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
# Pure, cheap builtins an argument expression may reasonably use.
_BUILTINS = {"int": int, "float": float, "bool": bool, "abs": abs, "min": min, "max": max,
             "round": round, "tuple": tuple, "list": list, "len": len}
_MAX_POWER = 64  # no 10 ** 10 ** 10
_MAX_SEQUENCE = 10_000  # no "x" * 10 ** 9


def reference_key(node: ast.AST) -> str | None:
    """The text a free reference is bound by: ``m``, ``cfg.momentum``, ``cfg["momentum"]``;
    None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and reference_key(node.value) is not None:
        return ast.unparse(node)
    if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
            and reference_key(node.value) is not None):
        return ast.unparse(node)
    return None


def dotted_root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class Evaluator:
    """Evaluates expressions of one module. ``bindings`` maps reference keys to values;
    ``imports`` maps the module's local names to what they import (``nn`` -> ``torch.nn``), so that
    ``ms.float32`` is known to be MindSpore's and ``torch.float32`` in migrated code is caught."""

    def __init__(self, bindings: Mapping[str, Any], imports: Mapping[str, str] | None = None,
                 functions: Mapping[str, Any] | None = None):
        self.bindings = bindings
        self.imports = imports or {}
        # Pure functions callable by name besides the builtins (the rules' sample shapes use prod).
        self.functions = {**_BUILTINS, **(functions or {})}

    def __call__(self, node: ast.AST) -> Any:
        return self._eval(node)

    def _eval(self, node: ast.AST) -> Any:
        key = reference_key(node)
        if key is not None and key in self.bindings:
            return self.bindings[key]
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise NotEvaluable(f"cannot evaluate {ast.unparse(node)!r} ({type(node).__name__})")
        return method(node)

    def _Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (int, float, complex, str, bool, type(None))):
            return node.value
        raise NotEvaluable(f"unsupported constant {node.value!r}")

    def _Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self._elements(node.elts))

    def _List(self, node: ast.List) -> list:
        return self._elements(node.elts)

    def _elements(self, elts) -> list:
        if any(isinstance(e, ast.Starred) for e in elts):
            raise NotEvaluable("starred element")
        return [self._eval(e) for e in elts]

    def _Name(self, node: ast.Name) -> Any:
        if node.id in _BUILTINS:  # only reachable as a callee; see _Call
            raise NotEvaluable(f"builtin {node.id} used as a value")
        raise NotEvaluable(f"{node.id} is not bound", (node.id,))

    def _Attribute(self, node: ast.Attribute) -> Any:
        dtype = self.dtype_constant(node)
        if dtype is not None:
            return dtype
        key = reference_key(node)
        raise NotEvaluable(f"{ast.unparse(node)} is not bound", (key,) if key else ())

    def _Subscript(self, node: ast.Subscript) -> Any:
        key = reference_key(node)
        if key is not None:
            raise NotEvaluable(f"{key} is not bound", (key,))
        value, index = self._eval(node.value), self._eval(node.slice)
        try:
            return value[index]
        except (TypeError, IndexError, KeyError) as exc:
            raise NotEvaluable(f"{ast.unparse(node)}: {exc}") from None

    def _Slice(self, node: ast.Slice) -> slice:
        parts = [None if part is None else self._eval(part) for part in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def dtype_constant(self, node: ast.Attribute) -> DType | None:
        """``torch.float32``, ``mindspore.float16``, ``ms.float32`` (any alias of either framework);
        the framework comes from the module's imports, else from the name's root."""
        if node.attr not in DTYPE_NAMES:
            return None
        root = dotted_root(node.value)
        if root is None:
            return None
        qualified = self.imports.get(root, root) + ast.unparse(node.value)[len(root):]
        framework = qualified.split(".", 1)[0]
        if framework not in FRAMEWORK_ROOTS:
            return None
        return DType(DTYPE_NAMES[node.attr], framework)

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self._eval(node.operand)
        ops = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
        return self._apply(ops[type(node.op)], value)

    def _BinOp(self, node: ast.BinOp) -> Any:
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise NotEvaluable(f"operator {type(node.op).__name__}")
        left, right = self._eval(node.left), self._eval(node.right)
        if fn is operator.pow and isinstance(right, (int, float)) and abs(right) > _MAX_POWER:
            raise NotEvaluable("exponent too large")
        if fn is operator.mul:
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, tuple, list)) and isinstance(count, int) and count > _MAX_SEQUENCE:
                    raise NotEvaluable("sequence too long")
        return self._apply(fn, left, right)

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value = None
        for operand in node.values:
            value = self._eval(operand)
            if bool(value) != is_and:  # short-circuit as Python does
                return value
        return value

    def _Compare(self, node: ast.Compare) -> bool:
        left = self._eval(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self._eval(comparator)
            if not self._apply(_CMPOPS[type(op)], left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self._eval(node.body) if self._eval(node.test) else self._eval(node.orelse)

    def _Call(self, node: ast.Call) -> Any:
        if (isinstance(node.func, ast.Attribute) and node.func.attr in _FILLED and len(node.args) == 1
                and not node.keywords and (dotted_root(node.func) or "") in self._framework_names()):
            return Filled(_FILLED[node.func.attr], self._eval(node.args[0]))
        qualified = qualified_name(node.func, self.imports)
        if qualified is not None and qualified.rpartition(".")[0] == INITIALIZER_MODULE:
            if any(k.arg is None for k in node.keywords):
                raise NotEvaluable(f"call {ast.unparse(node.func)}(**...)")
            return Initializer(qualified.rpartition(".")[2], tuple(self._elements(node.args)),
                               tuple((k.arg, self._eval(k.value)) for k in node.keywords))
        if not (isinstance(node.func, ast.Name) and node.func.id in self.functions) or node.keywords:
            raise NotEvaluable(f"call {ast.unparse(node.func)}(...)")
        args = self._elements(node.args)
        return self._apply(self.functions[node.func.id], *args)

    def _framework_names(self) -> set[str]:
        return {local for local, qual in self.imports.items() if qual.split(".", 1)[0] in FRAMEWORK_ROOTS} \
            | set(FRAMEWORK_ROOTS)

    @staticmethod
    def _apply(fn, *args) -> Any:
        try:
            return fn(*args)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise NotEvaluable(f"{type(exc).__name__}: {exc}") from None


def free_references(node: ast.AST, bound: Mapping[str, Any] = {}) -> list[str]:
    """Reference keys in ``node`` that need a binding, in source order, without duplicates."""
    out: list[str] = []

    def visit(n: ast.AST) -> None:
        key = reference_key(n)
        if key is not None:
            if isinstance(n, ast.Attribute) and n.attr in DTYPE_NAMES:
                return  # a dtype constant, or a binding the caller makes explicitly
            if isinstance(n, ast.Name) and n.id in _BUILTINS:
                return
            if key not in bound and key not in out:
                out.append(key)
            return
        if isinstance(n, ast.Call):  # builtins and ones_like: only the arguments are references
            for child in [*n.args, *(k.value for k in n.keywords)]:
                visit(child)
            return
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(node)
    return out


def condition_references(node: ast.AST) -> set[str]:
    """Reference keys used as truth values (``x if flag else y``, ``not frozen``, ``a and b``):
    a boolean is the natural sample for them whatever parameter they feed."""
    out: set[str] = set()
    for n in ast.walk(node):
        tests = []
        if isinstance(n, ast.IfExp):
            tests = [n.test]
        elif isinstance(n, ast.BoolOp):
            tests = n.values
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            tests = [n.operand]
        out.update(k for k in map(reference_key, tests) if k is not None)
    return out


def import_map(tree: ast.Module) -> dict[str, str]:
    """Local name -> imported qualified name, from every import in the module (scopes ignored:
    enough to tell torch's names from MindSpore's in argument expressions and callees)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    root = alias.name.split(".", 1)[0]
                    names[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def qualified_name(node: ast.AST, imports: Mapping[str, str]) -> str | None:
    """``nn.BatchNorm2d`` with ``import mindspore.nn as nn`` -> ``mindspore.nn.BatchNorm2d``;
    None when the callee is not a dotted name or its root is not imported."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in imports:
        return None
    return ".".join([imports[node.id], *reversed(parts)])


def parse_binding(text: str) -> tuple[str, Any]:
    """``--bind name=value``: the value is a literal or an expression of the evaluator (no names),
    e.g. ``m=0.01``, ``shape=(4, 8)``, ``dt=torch.float16``."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    try:
        key_node = ast.parse(name, mode="eval").body
    except SyntaxError:
        raise ValueError(f"not a name: {name!r}") from None
    key = reference_key(key_node)
    if key is None:
        raise ValueError(f"not a name: {name!r}")
    try:
        node = ast.parse(value, mode="eval").body
    except SyntaxError:
        raise ValueError(f"not a Python value: {value!r}") from None
    try:
        result = Evaluator({})(node)
    except NotEvaluable as exc:
        raise ValueError(f"cannot use {value!r} as a value: {exc}") from None
    # A bound dtype stands for the same dtype in either framework.
    return key, DType(result.name) if isinstance(result, DType) else result
