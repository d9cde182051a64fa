"""The models themselves. ``convert-ckpt --verify``: build the torch model from the original source
and the MindSpore model from the migrated source, load the weights into each (the converted
checkpoint, read back from disk, into the MindSpore one), run both in inference mode on the same
input, and compare. ``convert-ckpt --model 'Net(...)'``: build the MindSpore model and read what
it holds (``cell_layout``), the ground truth the keys are mapped onto.

This executes the source (both versions) as a module named other than ``__main__``.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..model import MigrationResult
from ..project_model import ProjectFiles, imported, written_tree
from ..ruleset import RuleSet
from .frameworks import CkptError, import_mindspore, import_torch
from .keys import CellLayout

DEFAULT_TOLERANCE = 1e-5
_SEED = 0
_counter = itertools.count()


class CannotVerify(CkptError):
    """The check cannot run (the model is not fully migrated, cannot be built, ...)."""


@dataclass(frozen=True)
class ModelSpec:
    """``Net`` or ``Net(3, depth=2)``: the class to build and its constructor's literal arguments.
    ``called``: written as a call, which asks for the model to be built."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    called: bool = False

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        try:
            expr = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            raise ValueError(f"not a class name or call: {text!r}") from None
        if isinstance(expr, ast.Name):
            return cls(expr.id)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            if any(isinstance(a, ast.Starred) for a in expr.args) or any(k.arg is None for k in expr.keywords):
                raise ValueError(f"no * or ** in the constructor arguments: {text!r}")
            try:
                args = tuple(ast.literal_eval(a) for a in expr.args)
                kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}
            except ValueError:
                raise ValueError(f"constructor arguments must be Python literals: {text!r}") from None
            return cls(expr.func.id, args, kwargs, called=True)
        raise ValueError(f"not a class name or call: {text!r}")

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"


@dataclass
class Verdict:
    model: str
    input_shape: tuple[int, ...]
    tolerance: float
    max_abs_error: float
    outputs: list[tuple[int, ...]]  # the shape of every output tensor (torch's)
    kept_initial: list[str]  # MindSpore parameters with no torch counterpart (affine=False, ...)
    problem: str | None = None  # the outputs cannot even be compared (count or shapes differ)

    @property
    def ok(self) -> bool:
        return self.problem is None and self.max_abs_error <= self.tolerance

    def to_dict(self) -> dict:
        return {"model": self.model, "input_shape": list(self.input_shape), "tolerance": self.tolerance,
                "max_abs_error": self.max_abs_error, "outputs": [list(s) for s in self.outputs],
                "kept_initial": self.kept_initial, "problem": self.problem, "ok": self.ok}


def why_not_mindspore(migration: MigrationResult) -> str | None:
    """None when torch2ms's migration of a file is all MindSpore; else why it cannot be run as a
    MindSpore model (or the comparison would not mean much)."""
    unconverted = [f for f in migration.findings if f.severity == "error"]
    if unconverted:
        f = unconverted[0]
        return (f"the migration left {len(unconverted)} site(s) unconverted (first: line {f.line}: {f.code} "
                f"{f.message})")
    return still_torch(migration.remaining_torch)


def still_torch(names: list[str]) -> str | None:
    if not names:
        return None
    it = "it" if len(names) == 1 else "them"
    return f"the migrated source still uses {', '.join(names)}: no rule of torch2ms converts {it}; port {it} by hand first"


@dataclass(frozen=True)
class Code:
    """The source of one file, and the name to run it under."""

    text: str
    path: str


@dataclass(frozen=True)
class ProjectCode:
    """A model file that imports from its project: the files it needs, imported as the packages they
    are, from where they lie (``codes`` None) or from a copy of the tree holding ``codes`` (file ->
    its migrated text)."""

    files: ProjectFiles
    codes: Mapping[str, str] | None = None

    @property
    def path(self) -> str:
        return self.files.module


def cell_layout_of(migrated: Code | ProjectCode, spec: ModelSpec, rules: RuleSet) -> CellLayout:
    """Build the MindSpore model and read what it holds."""
    import_mindspore()
    with contextlib.ExitStack() as stack, contextlib.redirect_stdout(sys.stderr):
        net = _build(_module(migrated, "migrated", stack), spec, "migrated")
        return cell_layout(net, rules, f"{spec} (built from {migrated.path})")


def cell_layout(net, rules: RuleSet, model: str) -> CellLayout:
    """Every cell of a built MindSpore model by its path, with the layer rules whose MindSpore class
    it is an instance of (the nearest in its class's MRO), and every parameter by its path, with
    the name MindSpore gives it (``Parameter.name``: what checkpoints and load_param_into_net use)
    and its shape."""
    import importlib

    by_class: dict[type, list] = {}
    for rule in rules.layers.values():
        if rule.kind != "layer":
            continue
        module, _, name = rule.mindspore.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue  # not in this MindSpore version: no cell is one
        by_class.setdefault(cls, []).append(rule)
    cells = {}
    for path, cell in net.cells_and_names():
        found = next((by_class[c] for c in type(cell).__mro__ if c in by_class), [])
        cells[path] = tuple(found)
    params = {path: (p.name, tuple(int(d) for d in p.shape)) for path, p in net.parameters_and_names()}
    return CellLayout(model, cells, params)


def verify(*, original: Code | ProjectCode, migrated: Code | ProjectCode, spec: ModelSpec, torch_state: dict,
           ckpt_path: str, input_shape: tuple[int, ...], tolerance: float = DEFAULT_TOLERANCE) -> Verdict:
    """``original``: the PyTorch code of the model's file (and of the project files it imports);
    ``migrated``: its MindSpore code (all MindSpore: the caller makes sure)."""
    torch = import_torch()
    ms = import_mindspore()
    import numpy as np

    # What the user's code prints must not break --json.
    with contextlib.ExitStack() as stack, contextlib.redirect_stdout(sys.stderr):
        model = _build(_module(original, "torch", stack), spec, "torch")
        net = _build(_module(migrated, "migrated", stack), spec, "migrated")
        try:
            model.load_state_dict(torch_state, strict=True)
        except (RuntimeError, ValueError) as exc:
            raise CannotVerify(f"the checkpoint does not fit the torch model {spec}: {_first_line(exc)}") from None
        kept_initial = _load_mindspore(ms, net, ckpt_path, spec)
        model.eval()
        net.set_train(False)
        sample = np.random.default_rng(_SEED).standard_normal(input_shape).astype(np.float32)
        with torch.no_grad():
            expected = _run(lambda: model(torch.from_numpy(sample.copy())), f"the torch model {spec}", input_shape)
        got = _run(lambda: net(ms.Tensor(sample.copy())), f"the migrated model {spec}", input_shape)
    error, problem = _max_abs_error(np, expected, got)
    return Verdict(str(spec), tuple(input_shape), tolerance, error, [tuple(a.shape) for a in expected],
                   kept_initial, problem)


def _run(call, what: str, input_shape) -> list:
    try:
        output = call()
    except Exception as exc:  # the user's model, any error
        raise CannotVerify(f"{what} failed on an input of shape {input_shape}: "
                           f"{type(exc).__name__}: {_first_line(exc)}") from None
    return _arrays(output)


def _module(code: Code | ProjectCode, label: str, stack: contextlib.ExitStack) -> types.ModuleType:
    """The model's module, run fresh, and gone from sys.modules when ``stack`` closes."""
    version = "original" if label == "torch" else "migrated"
    if isinstance(code, ProjectCode):
        base = code.files.base if code.codes is None else stack.enter_context(written_tree(code.files, code.codes))
        try:
            return stack.enter_context(imported(base, code.files.module, code.files.tops))
        except Exception as exc:  # the user's code, any error
            raise CannotVerify(f"importing the {version} {code.files.module} failed: {type(exc).__name__}: "
                               f"{_first_line(exc)}") from None
    # Registered in sys.modules while in use: dataclasses and the like look their module up.
    name = f"_torch2ms_ckpt_{label}_{next(_counter)}"
    module = types.ModuleType(name)
    module.__file__ = code.path
    sys.modules[name] = module
    stack.callback(sys.modules.pop, name, None)
    try:
        exec(compile(code.text, code.path, "exec"), module.__dict__)
    except Exception as exc:  # the user's code, any error
        raise CannotVerify(f"the {version} source failed to run: {type(exc).__name__}: {_first_line(exc)}") from None
    return module


def _build(module: types.ModuleType, spec: ModelSpec, label: str):
    cls = getattr(module, spec.name, None)
    if not isinstance(cls, type):
        raise CannotVerify(f"the source defines no class {spec.name!r} at module level")
    try:
        return cls(*spec.args, **spec.kwargs)
    except Exception as exc:  # the user's constructor, any error
        raise CannotVerify(f"building the {label} model {spec} failed: {type(exc).__name__}: "
                           f"{_first_line(exc)}") from None


def _load_mindspore(ms, net, ckpt_path: str, spec: ModelSpec) -> list[str]:
    """Load the written checkpoint into the migrated model; the parameters it leaves at their
    initial values. Every converted key must land on a parameter of the model."""
    params = ms.load_checkpoint(ckpt_path)
    try:
        not_loaded, unused = ms.load_param_into_net(net, params, strict_load=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CannotVerify(f"the converted checkpoint does not fit the migrated model {spec}: "
                           f"{_first_line(exc)}") from None
    if unused:
        raise CannotVerify(f"converted keys the migrated model {spec} does not have: {', '.join(sorted(unused))}")
    return sorted(not_loaded)


def _arrays(output: Any) -> list:
    """Every tensor of a model's output (a tensor, or tuples/lists/dicts of them), as numpy arrays."""
    if isinstance(output, (tuple, list)):
        return [a for item in output for a in _arrays(item)]
    if isinstance(output, dict):
        return [a for key in sorted(output) for a in _arrays(output[key])]
    if hasattr(output, "asnumpy"):
        return [output.asnumpy()]
    if hasattr(output, "detach"):
        return [output.detach().cpu().numpy()]
    raise CannotVerify(f"the model returned a {type(output).__name__}, not tensors")


def _max_abs_error(np, expected: list, got: list) -> tuple[float, str | None]:
    """The largest difference between corresponding outputs, and why they cannot be compared."""
    if len(expected) != len(got):
        return float("inf"), f"the torch model returned {len(expected)} tensors, the migrated one {len(got)}"
    worst = 0.0
    for a, b in zip(expected, got):
        if a.shape != b.shape:
            return float("inf"), f"output shapes differ: torch {a.shape}, MindSpore {b.shape}"
        a64, b64 = np.atleast_1d(a).astype(np.float64), np.atleast_1d(b).astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a64 - b64)
        diff[(a64 == b64) | (np.isnan(a64) & np.isnan(b64))] = 0  # equal infinities, NaN on both sides
        if np.isnan(diff).any():
            return float("inf"), None  # NaN (or an infinity) on one side only is as wrong as it gets
        if diff.size:
            worst = max(worst, float(diff.max()))
    return worst, None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
