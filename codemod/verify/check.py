"""The protocol for one site: build the torch layer and the MindSpore layer from the evaluated
arguments, copy torch's parameters into MindSpore, train K steps comparing outputs and moving
statistics after each, then switch to inference and compare outputs and parameters."""

from __future__ import annotations

import ast
import inspect
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from .compare import Comparison, Tolerance, compare_arrays
from .evaluate import DType, Evaluator, Filled, NotEvaluable, TensorSample
from .frameworks import Frameworks
from .harness import sample_array, to_numpy, to_tensor
from .sites import CallPair

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

# The few places the normalization family differs, as data.
# Arguments whose value fixes the input's channel dimension, and the one fixing its trailing shape.
CHANNEL_PARAMS = ("num_features", "num_channels")
TRAILING_SHAPE_PARAMS = ("normalized_shape",)
DEFAULT_CHANNELS = 4
# Where torch has no affine parameter, the MindSpore one must act as the identity.
IDENTITY_WHEN_ABSENT = {"weight": 1.0, "bias": 0.0}
# Arguments the CPU-only check replaces: where a layer lives does not change its numbers.
CPU_ARGUMENTS = {"device": "cpu"}
# Values the torch layer accepts but that mean nothing (a sample outside them says nothing).
ARGUMENT_DOMAINS = {"momentum": (0.0, 1.0)}
# MindSpore layers with no CPU kernel (GPU/Ascend only): checked nowhere on a CPU machine.
NO_CPU_KERNEL = {"mindspore.nn.InstanceNorm1d", "mindspore.nn.InstanceNorm2d", "mindspore.nn.InstanceNorm3d"}
SPATIAL_SIZES = (3, 5, 2)  # unequal, so a transposed axis shows
BATCH = 2


@dataclass
class SiteCheck:
    """The verdict for one site, with every comparison that led to it."""

    path: str | None
    line: int
    layer: str  # the torch qualified name
    mindspore: str | None
    arguments: str  # as written in the original
    migrated_arguments: str | None
    status: str  # PASS | FAIL | SKIP
    reason: str = ""
    bindings: dict[str, str] = field(default_factory=dict)  # name -> value used (repr)
    sampled: list[str] = field(default_factory=list)  # names verify chose a sample for
    migrated_path: str | None = None
    migrated_line: int | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: float = 0.0
    cell: int | None = None  # in a notebook: the cell (1-based, as migrate counts), ``line`` within it
    migrated_cell: int | None = None

    @property
    def max_abs(self) -> float | None:
        return max((c.max_abs for c in self.comparisons), default=None)

    @property
    def max_rel(self) -> float | None:
        return max((c.max_rel for c in self.comparisons), default=None)

    @property
    def failed(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def to_dict(self) -> dict:
        return {
            "path": self.path, "line": self.line, "layer": self.layer, "mindspore": self.mindspore,
            "arguments": self.arguments, "migrated_arguments": self.migrated_arguments,
            "status": self.status, "reason": self.reason, "bindings": self.bindings,
            "sampled": self.sampled, "migrated_path": self.migrated_path, "migrated_line": self.migrated_line,
            "cell": self.cell, "migrated_cell": self.migrated_cell,
            "max_abs": _finite(self.max_abs), "max_rel": _finite(self.max_rel), "seconds": round(self.seconds, 6),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def _finite(value):
    return value if value is None or math.isfinite(value) else str(value)


class _Skip(Exception):
    pass


class _Fail(Exception):
    pass


def check_pair(pair: CallPair, fw: Frameworks, tolerance: Tolerance = Tolerance(), steps: int = 3) -> SiteCheck:
    start = time.perf_counter()
    path, line = pair.where
    check = SiteCheck(
        path, line, pair.rule.torch, pair.mindspore,
        pair.original.arguments if pair.original else "",
        pair.migrated.arguments if pair.migrated else None, SKIP,
        bindings={k: repr(v) for k, v in pair.bindings.items()}, sampled=sorted(pair.sampled),
        migrated_path=pair.migrated.path if pair.migrated else None,
        migrated_line=pair.migrated.line if pair.migrated else None,
    )
    try:
        if pair.fail:
            raise _Fail(pair.fail)
        if pair.skip:
            raise _Skip(pair.skip)
        if pair.mindspore in NO_CPU_KERNEL or pair.rule.mindspore in NO_CPU_KERNEL:
            raise _Skip(f"{pair.mindspore} has no CPU kernel in MindSpore: check it on GPU/Ascend")
        if pair.rule.random:
            raise _Skip(f"{pair.rule.torch_name} draws random numbers: MindSpore's are others, from the same "
                        f"distribution")
        protocol = _FunctionProtocol if pair.rule.kind == "function" else _LayerProtocol
        protocol(pair, fw, tolerance, steps, check).run()
        check.status = FAIL if check.failed else PASS
        if check.failed:
            first = check.failed[0]
            check.reason = f"{first.phase}: {first.quantity}" + (f" ({first.detail})" if first.detail else "")
    except _Skip as exc:  # whatever was compared before says nothing about the site
        check.status, check.reason, check.comparisons = SKIP, str(exc), []
    except _Fail as exc:
        check.status, check.reason = FAIL, str(exc)
    check.seconds = time.perf_counter() - start
    return check


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class _Protocol:
    """What layers and functions share: evaluating the arguments as each framework's values."""

    def __init__(self, pair: CallPair, fw: Frameworks, tolerance: Tolerance, steps: int, check: SiteCheck):
        self.pair, self.fw, self.steps, self.check = pair, fw, steps, check
        self.tolerance = tolerance
        self.np_dtype = "float32"
        self.samples: dict[str, dict[TensorSample, Any]] = {"torch": {}, "mindspore": {}}
        self.step = 0

    def _arguments(self, call, framework: str):
        """The call's arguments, evaluated; one that cannot be is kept as NotEvaluable (it may be
        an argument the check replaces, such as the device)."""
        if any(k.arg is None for k in call.node.keywords) or any(isinstance(a, ast.Starred) for a in call.node.args):
            raise _Skip("*args/**kwargs hide the arguments")
        evaluate = Evaluator(self.pair.bindings, call.imports)

        def value(node):
            try:
                return self._native(evaluate(node), framework)
            except NotEvaluable as exc:
                return exc

        return [value(a) for a in call.node.args], {k.arg: value(k.value) for k in call.node.keywords}

    @staticmethod
    def _evaluated(arguments: dict, side: str) -> None:
        for value in arguments.values():
            if isinstance(value, NotEvaluable):
                raise _Skip(f"cannot evaluate the {side} arguments: {value}")

    def _native(self, value: Any, framework: str) -> Any:
        """Framework-neutral values as the framework's objects. A dtype the source names from the
        other framework stays that framework's object: the call then fails, as the program would."""
        if isinstance(value, DType):
            module = self.fw.torch if (value.framework or framework) == "torch" else self.fw.mindspore
            return getattr(module, value.name)
        if isinstance(value, TensorSample):
            cache = self.samples[framework]
            if value not in cache:
                cache[value] = to_tensor(self.fw, framework, self.sample_values(value))
            return cache[value]
        if isinstance(value, Filled):
            like = to_numpy(self._native(value.like, framework))
            return to_tensor(self.fw, framework, self.fw.numpy.full_like(like, value.value))
        if isinstance(value, tuple):
            return tuple(self._native(v, framework) for v in value)
        if isinstance(value, list):
            return [self._native(v, framework) for v in value]
        return value

    def sample_values(self, sample: TensorSample):
        """Seeded values for a tensor argument: the input changes every step, the rest do not."""
        np = self.fw.numpy
        seed = zlib.crc32(f"{sample.role}:{sample.name}".encode())
        if sample.role == "input":
            return (sample_array(*self.shape, seed=seed + self.step) * 2.0 + 0.5).astype(self.np_dtype)
        rng = np.random.default_rng(seed)
        low, high = (0.5, 1.5) if sample.role in ("var", "weight") else (-0.5, 0.5)
        return rng.uniform(low, high, self.shape[1]).astype(self.np_dtype)


class _FunctionProtocol(_Protocol):
    """A normalization function: K calls on fresh inputs, comparing the output and the running
    statistics it updates in place after each."""

    def run(self) -> None:
        rank = self.pair.input_rank or self.pair.rule.input_rank or 4
        self.shape = (BATCH, DEFAULT_CHANNELS, *SPATIAL_SIZES[: rank - 2])
        torch_fn = self.fw.resolve(self.pair.rule.torch)
        try:
            ms_fn = self.fw.resolve(self.pair.mindspore)
        except (ImportError, AttributeError) as exc:
            raise _Fail(f"{self.pair.mindspore} does not exist in MindSpore: {_error(exc)}") from None
        for self.step in range(1, self.steps + 1):
            phase = f"call {self.step}"
            for cache in self.samples.values():  # a fresh input every call; statistics persist
                for sample in [s for s in cache if s.role == "input"]:
                    del cache[sample]
            args, kwargs = self._arguments(self.pair.original, "torch")
            self._evaluated(dict(enumerate(args)) | kwargs, "original")
            try:
                expected = to_numpy(torch_fn(*args, **kwargs))
            except Exception as exc:
                raise _Skip(f"the original raises under torch: {_error(exc)}") from None
            args, kwargs = self._arguments(self.pair.migrated, "mindspore")
            self._evaluated(dict(enumerate(args)) | kwargs, "migrated")
            try:
                actual = to_numpy(ms_fn(*args, **kwargs))
            except Exception as exc:
                raise _Fail(f"{phase}: the migrated call raises under MindSpore: {_error(exc)}") from None
            self.check.comparisons.append(compare_arrays(phase, "output", expected, actual, self.tolerance))
            for sample, tensor in self.samples["torch"].items():
                if sample.role in ("mean", "var") and sample in self.samples["mindspore"]:
                    self.check.comparisons.append(compare_arrays(
                        phase, sample.name, to_numpy(tensor), to_numpy(self.samples["mindspore"][sample]),
                        self.tolerance))


class _LayerProtocol(_Protocol):
    def build(self):
        torch_cls = self.fw.resolve(self.pair.rule.torch)
        args, kwargs = self._arguments(self.pair.original, "torch")
        try:
            bound = inspect.signature(torch_cls).bind(*args, **kwargs)
        except TypeError as exc:
            raise _Skip(f"the original call does not match {self.pair.rule.torch}: {exc}") from None
        for name, value in CPU_ARGUMENTS.items():
            if name in bound.arguments:
                bound.arguments[name] = value
        self._evaluated(bound.arguments, "original")
        self.torch_arguments = bound.arguments
        for name, (low, high) in ARGUMENT_DOMAINS.items():
            value = bound.arguments.get(name)
            if isinstance(value, (int, float)) and not low <= value <= high:
                raise _Skip(f"{name}={value!r} is outside [{low:g}, {high:g}] with these bindings: "
                            f"bind the names with --bind NAME=VALUE")
        try:
            torch_layer = torch_cls(*bound.args, **bound.kwargs)
        except Exception as exc:  # the original itself cannot be built with these values
            raise _Skip(f"the original raises under torch: {_error(exc)}") from None

        try:
            ms_cls = self.fw.resolve(self.pair.mindspore)
        except (ImportError, AttributeError) as exc:
            raise _Fail(f"{self.pair.mindspore} does not exist in MindSpore {self.fw.mindspore.__version__}: {_error(exc)}") from None
        ms_args, ms_kwargs = self._arguments(self.pair.migrated, "mindspore")
        self._evaluated(dict(enumerate(ms_args)) | ms_kwargs, "migrated")
        try:
            ms_layer = ms_cls(*ms_args, **ms_kwargs)
        except Exception as exc:
            raise _Fail(f"the migrated call raises under MindSpore: {_error(exc)}") from None
        return torch_layer, ms_layer

    def input_shape(self, torch_layer) -> tuple[int, ...]:
        args = self.torch_arguments
        trailing: tuple[int, ...] = ()
        for name in TRAILING_SHAPE_PARAMS:
            if name in args:
                value = args[name]
                trailing = (value,) if isinstance(value, int) else tuple(value)
        channels = next((args[n] for n in CHANNEL_PARAMS if n in args), DEFAULT_CHANNELS)
        rank = self.pair.input_rank or self.pair.rule.input_rank or (len(trailing) + 2 if trailing else 4)
        if trailing:
            lead = (BATCH, channels, *SPATIAL_SIZES)[: rank - len(trailing)]
            return (*lead, *trailing)
        return (BATCH, channels, *SPATIAL_SIZES[: rank - 2])

    # -- the protocol ----------------------------------------------------------------------------

    def run(self) -> None:
        torch_layer, ms_layer = self.build()
        self.tensors, self.scalars = self.corresponding(torch_layer, ms_layer)
        dtype_name = next((str(t.dtype).rsplit(".", 1)[-1] for _, t, _ in self.tensors if t is not None), "float32")
        self.tolerance = self.tolerance.for_dtype(dtype_name)
        self.np_dtype = {"float16": "float16", "float64": "float64"}.get(dtype_name, "float32")
        shape = self.input_shape(torch_layer)

        # The initial values as built: a wrong init (gamma_init=False, ...) shows here.
        self.compare_tensors("init", torch_layer, ms_layer, buffers_only=False)
        self.copy_parameters(torch_layer, ms_layer)

        torch_layer.train()
        ms_layer.set_train(True)
        for step in range(1, self.steps + 1):
            self.forward(f"train {step}", torch_layer, ms_layer, shape, seed=step)
            self.compare_tensors(f"train {step}", torch_layer, ms_layer, buffers_only=True)
        torch_layer.eval()
        ms_layer.set_train(False)
        self.forward("eval", torch_layer, ms_layer, shape, seed=self.steps + 1)
        self.compare_tensors("eval", torch_layer, ms_layer, buffers_only=False)
        for torch_name, ms_path, torch_value, ms_value in self.scalars:
            quantity = f"{torch_name}/{ms_path}"
            if isinstance(ms_value, (int, float)) and not isinstance(ms_value, bool):
                self.check.comparisons.append(compare_arrays("eval", quantity, torch_value, ms_value, self.tolerance))
            else:  # a read of the attribute would not give a number as torch's does
                self.check.comparisons.append(Comparison("eval", quantity, math.inf, math.inf, False,
                                                         f"MindSpore's {ms_path} is {ms_value!r}"))

    def corresponding(self, torch_layer, ms_layer):
        """(torch name, torch tensor or None, MindSpore path) for every tensor the rule's attribute
        table maps, and (torch name, MindSpore path, torch value, MindSpore value) for numbers."""
        torch = self.fw.torch
        buffers = {name for name, _ in torch_layer.named_buffers(recurse=False)}
        self.buffers = buffers
        tensors, scalars = [], []
        for torch_name, ms_path in self.pair.rule.attributes.items():
            if not ms_path:
                continue
            torch_value = getattr(torch_layer, torch_name, None)
            try:
                ms_value = _get_path(ms_layer, ms_path)
            except AttributeError:
                if torch_value is None:
                    continue
                raise _Fail(f"the MindSpore layer has no {ms_path} (torch {torch_name})") from None
            if isinstance(torch_value, torch.Tensor) or (torch_value is None and torch_name in IDENTITY_WHEN_ABSENT):
                if torch_value is None and not hasattr(ms_value, "asnumpy"):
                    continue
                tensors.append((torch_name, torch_value, ms_path))
            elif isinstance(torch_value, (int, float)) and not isinstance(torch_value, bool):
                scalars.append((torch_name, ms_path, torch_value, ms_value))
        return tensors, scalars

    def compare_tensors(self, phase: str, torch_layer, ms_layer, *, buffers_only: bool) -> None:
        for torch_name, _, ms_path in self.tensors:
            if buffers_only and torch_name not in self.buffers:
                continue
            torch_value = getattr(torch_layer, torch_name, None)
            ms_value = to_numpy(_get_path(ms_layer, ms_path))
            if torch_value is None:
                expected = self.fw.numpy.full(ms_value.shape, IDENTITY_WHEN_ABSENT[torch_name])
            else:
                expected = to_numpy(torch_value)
            self.check.comparisons.append(
                compare_arrays(phase, f"{torch_name}/{ms_path}", expected, ms_value, self.tolerance))

    def copy_parameters(self, torch_layer, ms_layer) -> None:
        """Give torch's parameters and statistics distinct seeded values (so a swapped mapping
        shows), then copy them into MindSpore."""
        torch, ms, np = self.fw.torch, self.fw.mindspore, self.fw.numpy
        rng = np.random.default_rng(12345)
        for torch_name, torch_value, ms_path in self.tensors:
            if torch_value is None:
                continue
            values = rng.uniform(0.5, 1.5, torch_value.shape) if "var" in torch_name or torch_name == "weight" \
                else rng.uniform(-0.5, 0.5, torch_value.shape)
            with torch.no_grad():
                torch_value.copy_(torch.from_numpy(values.astype(self.np_dtype)))
            target = _get_path(ms_layer, ms_path)
            target.set_data(ms.Tensor(values.astype(self.np_dtype), dtype=target.dtype))

    def forward(self, phase: str, torch_layer, ms_layer, shape, seed: int) -> None:
        torch, ms = self.fw.torch, self.fw.mindspore
        x = (sample_array(*shape, seed=seed) * 2.0 + 0.5).astype(self.np_dtype)  # mean 0.5, var 4
        try:
            with torch.no_grad():
                expected = torch_layer(torch.from_numpy(x.copy())).numpy()
        except Exception as exc:
            raise _Skip(f"the original raises under torch on a {shape} input: {_error(exc)}") from None
        try:
            actual = ms_layer(ms.Tensor(x.copy())).asnumpy()
        except Exception as exc:
            raise _Fail(f"{phase}: the migrated layer raises under MindSpore on a {shape} input: {_error(exc)}") from None
        self.check.comparisons.append(compare_arrays(phase, "output", expected, actual, self.tolerance))


def _get_path(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj
