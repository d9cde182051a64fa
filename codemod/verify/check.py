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
from .evaluate import INITIALIZER_MODULE, DType, Evaluator, Filled, Initializer, NotEvaluable, TensorSample
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
# Functions a rule's sample shape may call (rules/*.toml [layer.sample]).
SAMPLE_FUNCTIONS = {"prod": math.prod}
SEED = 20240
# Random initial values (and dropout masks) come from different generators in the two frameworks:
# they are compared by their statistics. A difference of this many standard errors fails.
RANDOM_SIGMAS = 5.0
# Dropout masks: the zeroed fractions may differ by this much (the rules' sample shapes hold >= 4096
# independently dropped units: 4.5 standard errors at p = 0.5).
MASK_FRACTION_TOLERANCE = 0.05


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
        if isinstance(value, Initializer) and framework == "mindspore":
            initializer = self.fw.resolve(f"{INITIALIZER_MODULE}.{value.name}")
            return initializer(*[self._native(v, framework) for v in value.args],
                          **{k: self._native(v, framework) for k, v in value.kwargs})
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
        with_defaults = inspect.signature(torch_cls).bind(*bound.args, **bound.kwargs)
        with_defaults.apply_defaults()
        self.argument_values = dict(with_defaults.arguments)
        for name, (low, high) in ARGUMENT_DOMAINS.items():
            value = bound.arguments.get(name)
            if isinstance(value, (int, float)) and not low <= value <= high:
                raise _Skip(f"{name}={value!r} is outside [{low:g}, {high:g}] with these bindings: "
                            f"bind the names with --bind NAME=VALUE")
        self.fw.torch.manual_seed(SEED)  # random initial values, dropout masks: the same on every run
        self.fw.mindspore.set_seed(SEED)
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

    def input_shapes(self) -> list[tuple[int, ...]]:
        """The shape of each input: the rule's sample shapes, evaluated with the call's arguments;
        else one input of the rule's rank, sized by the normalization parameters."""
        if self.pair.rule.sample.shapes:
            return [self._sample_value(text, "input shape") for text in self.pair.rule.sample.shapes]
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
            return [(*lead, *trailing)]
        return [(BATCH, channels, *SPATIAL_SIZES)[:rank]]

    def _sample_value(self, text: str, what: str):
        try:
            value = Evaluator(self.argument_values, functions=SAMPLE_FUNCTIONS)(ast.parse(text, mode="eval").body)
        except (NotEvaluable, SyntaxError) as exc:
            raise _Skip(f"no {what} for these arguments ({text}): {exc}") from None
        return tuple(int(d) for d in value) if isinstance(value, (tuple, list)) else int(value)

    def inputs(self, shapes: list[tuple[int, ...]], seed: int) -> list:
        """Seeded input arrays: indices below the rule's bound, else mean 0.5, variance 4."""
        np = self.fw.numpy
        bound_text = self.pair.rule.sample.integers
        if bound_text is not None:
            bound = self._sample_value(bound_text, "index bound")
            return [np.random.default_rng(seed + 101 * i).integers(0, bound, shape) for i, shape in enumerate(shapes)]
        return [(sample_array(*shape, seed=seed + 101 * i) * 2.0 + 0.5).astype(self.np_dtype)
                for i, shape in enumerate(shapes)]

    def random_outputs(self) -> str | None:
        """How training outputs compare when the layer draws random numbers in training (dropout
        with a non-zero rate): the rule's sample.random_output; None when they are deterministic."""
        spec = self.pair.rule.sample
        if spec.random_when is None or not self.argument_values.get(spec.random_when):
            return None
        return spec.random_output

    # -- the protocol ----------------------------------------------------------------------------

    def run(self) -> None:
        torch_layer, ms_layer = self.build()
        self.tensors, self.scalars = self.corresponding(torch_layer, ms_layer)
        dtype_name = next((str(t.dtype).rsplit(".", 1)[-1] for _, t, _ in self.tensors if t is not None), "float32")
        self.tolerance = self.tolerance.for_dtype(dtype_name)
        self.np_dtype = {"float16": "float16", "float64": "float64"}.get(dtype_name, "float32")
        shapes = self.input_shapes()

        # The initial values as built: a wrong init (gamma_init=False, ...) shows here.
        self.compare_tensors("init", torch_layer, ms_layer, buffers_only=False)
        self.copy_parameters(torch_layer, ms_layer)

        torch_layer.train()
        ms_layer.set_train(True)
        random = self.random_outputs()
        for step in range(1, self.steps + 1):
            self.forward(f"train {step}", torch_layer, ms_layer, shapes, seed=step, random=random)
            self.compare_tensors(f"train {step}", torch_layer, ms_layer, buffers_only=True)
        torch_layer.eval()
        ms_layer.set_train(False)
        self.forward("eval", torch_layer, ms_layer, shapes, seed=self.steps + 1)
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
        table maps and every other parameter and buffer of the torch layer (under its own name),
        and (torch name, MindSpore path, torch value, MindSpore value) for numbers the table maps."""
        torch = self.fw.torch
        buffers = {name for name, _ in torch_layer.named_buffers()}
        self.buffers = buffers
        tensors, scalars = [], []
        for torch_name, ms_path in self.pair.rule.attributes.items():
            if not ms_path:
                continue
            torch_value = _get_path_or_none(torch_layer, torch_name)
            try:
                ms_value = _get_path(ms_layer, ms_path)
            except AttributeError:
                if torch_value is None:
                    continue
                raise _Fail(f"the MindSpore layer has no {ms_path} (torch {torch_name})") from None
            if isinstance(torch_value, torch.Tensor) or (torch_value is None and torch_name in IDENTITY_WHEN_ABSENT):
                if torch_value is None and not hasattr(ms_value, "asnumpy"):
                    continue
                if ms_value is None:  # Conv2d(..., has_bias=False): MindSpore's bias is None
                    raise _Fail(f"the MindSpore layer has no {ms_path} (torch's {torch_name} is a tensor)")
                tensors.append((torch_name, torch_value, ms_path))
            elif isinstance(torch_value, (int, float)) and not isinstance(torch_value, bool):
                scalars.append((torch_name, ms_path, torch_value, ms_value))
        mapped = set(self.pair.rule.attributes)
        for torch_name, torch_value in [*torch_layer.named_parameters(), *torch_layer.named_buffers()]:
            if torch_name in mapped:
                continue
            if _get_path_or_none(ms_layer, torch_name) is None:
                raise _Fail(f"the MindSpore layer has no {torch_name} (torch's name; the rule maps no other)")
            tensors.append((torch_name, torch_value, torch_name))
        return tensors, scalars

    def as_mindspore_layout(self, torch_name: str, array):
        """A torch tensor's values in the layout of its MindSpore counterpart (Conv1d: 4-D)."""
        axis = self.pair.rule.inserted_axes.get(torch_name)
        return array if axis is None else self.fw.numpy.expand_dims(array, axis)

    def compare_tensors(self, phase: str, torch_layer, ms_layer, *, buffers_only: bool) -> None:
        for torch_name, _, ms_path in self.tensors:
            if buffers_only and torch_name not in self.buffers:
                continue
            torch_value = _get_path_or_none(torch_layer, torch_name)
            ms_value = to_numpy(_get_path(ms_layer, ms_path))
            if torch_value is None:
                expected = self.fw.numpy.full(ms_value.shape, IDENTITY_WHEN_ABSENT[torch_name])
            else:
                expected = self.as_mindspore_layout(torch_name, to_numpy(torch_value))
            quantity = f"{torch_name}/{ms_path}"
            if phase == "init" and torch_name in self.pair.rule.random_init:
                self.check.comparisons.append(compare_statistics(phase, quantity, expected, ms_value))
            else:
                self.check.comparisons.append(compare_arrays(phase, quantity, expected, ms_value, self.tolerance))

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
            try:
                target.set_data(ms.Tensor(self.as_mindspore_layout(torch_name, values).astype(self.np_dtype),
                                          dtype=target.dtype))
            except Exception as exc:  # another shape: the layers hold different parameters
                raise _Fail(f"torch's {torch_name} {tuple(torch_value.shape)} does not fit MindSpore's {ms_path} "
                            f"{tuple(target.shape)}: {_error(exc)}") from None

    def forward(self, phase: str, torch_layer, ms_layer, shapes, seed: int, random: str | None = None) -> None:
        torch, ms = self.fw.torch, self.fw.mindspore
        xs = self.inputs(shapes, seed)
        where = f"on {' and '.join(map(str, shapes))} input" + ("s" if len(shapes) > 1 else "")
        try:
            with torch.no_grad():
                expected = _outputs(torch_layer(*[torch.from_numpy(x.copy()) for x in xs]))
        except Exception as exc:
            raise _Skip(f"the original raises under torch {where}: {_error(exc)}") from None
        try:
            actual = _outputs(ms_layer(*[ms.Tensor(x.copy()) for x in xs]))
        except Exception as exc:
            raise _Fail(f"{phase}: the migrated layer raises under MindSpore {where}: {_error(exc)}") from None
        if len(expected) != len(actual):
            self.check.comparisons.append(Comparison(phase, "output", math.inf, math.inf, False,
                                                     f"{len(actual)} outputs (MindSpore) != {len(expected)} (torch)"))
            return
        for i, (e, a) in enumerate(zip(expected, actual)):
            quantity = "output" if len(expected) == 1 else f"output {i}"
            if e is None or a is None:
                if (e is None) != (a is None):
                    self.check.comparisons.append(Comparison(phase, quantity, math.inf, math.inf, False,
                                                             f"None under {'torch' if e is None else 'MindSpore'} only"))
            elif random == "mask":
                self.compare_mask(phase, quantity, e, a, xs[0])
            elif random is None:
                self.check.comparisons.append(compare_arrays(phase, quantity, e, a, self.tolerance))
            # random == "none": random training outputs are not compared (inference is)

    def compare_mask(self, phase: str, quantity: str, expected, actual, x) -> None:
        """Dropout: the same fraction of zeroed values (within MASK_FRACTION_TOLERANCE), and every
        value MindSpore keeps scaled as torch scales the values it keeps."""
        np = self.fw.numpy
        zeroed_t, zeroed_ms = float(np.mean(expected == 0)), float(np.mean(actual == 0))
        diff = abs(zeroed_t - zeroed_ms)
        self.check.comparisons.append(Comparison(
            phase, f"{quantity} zeroed fraction", diff, diff / max(zeroed_t, 1e-12), diff <= MASK_FRACTION_TOLERANCE,
            "" if diff <= MASK_FRACTION_TOLERANCE else f"torch zeroes {zeroed_t:.3f}, MindSpore {zeroed_ms:.3f}"))
        kept_t, kept_ms = expected != 0, actual != 0
        if kept_t.any():
            scale = float(np.median(expected[kept_t] / x[kept_t]))
            self.check.comparisons.append(compare_arrays(phase, f"{quantity} kept values", x[kept_ms] * scale,
                                                         actual[kept_ms], self.tolerance))


def compare_statistics(phase: str, quantity: str, expected, actual) -> Comparison:
    """Values drawn at random: the same shape, and mean and standard deviation within RANDOM_SIGMAS
    standard errors (a constant on one side only fails). The values themselves are not comparable:
    max_abs/max_rel are 0 when the statistics agree, the difference of the deviations when not."""
    import numpy as np

    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return Comparison(phase, quantity, math.inf, math.inf, False,
                          f"shape {tuple(actual.shape)} (MindSpore) != {tuple(expected.shape)} (torch)")
    if expected.size == 0:
        return Comparison(phase, quantity, 0.0, 0.0, True)
    n = expected.size
    std_t, std_ms = float(expected.std()), float(actual.std())
    mean_diff = abs(float(expected.mean()) - float(actual.mean()))
    spread = max(std_t, std_ms)
    detail = (f"drawn at random: mean {expected.mean():.3g} / {actual.mean():.3g}, std {std_t:.3g} / {std_ms:.3g} "
              f"(torch / MindSpore, {n} values)")
    if spread == 0:  # constants on both sides: they must be equal
        return Comparison(phase, quantity, mean_diff, 0.0, mean_diff == 0, "" if mean_diff == 0 else detail)
    std_rel = abs(std_t - std_ms) / spread
    passed = (min(std_t, std_ms) > 0 and std_rel <= RANDOM_SIGMAS / math.sqrt(n)
              and mean_diff <= RANDOM_SIGMAS * spread * math.sqrt(2 / n))
    if passed:
        return Comparison(phase, quantity, 0.0, 0.0, True)
    return Comparison(phase, quantity, abs(std_t - std_ms), std_rel, False, detail)


def _outputs(value) -> list:
    """A layer's result as a list of arrays (None kept): one tensor, or a tuple of them."""
    if isinstance(value, (tuple, list)):
        return [None if v is None else to_numpy(v) for v in value]
    return [to_numpy(value)]


def _get_path_or_none(obj, path: str):
    try:
        return _get_path(obj, path)
    except AttributeError:
        return None


def _get_path(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj
