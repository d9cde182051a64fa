"""The whole-model check: build the torch model from the original source and the MindSpore model
from its migration, give both the same weights (the torch state dict carried across with the key
mapping of ``convert-ckpt``, no file written), run K training-mode forward passes on the same seeded
batches and one in inference mode, and compare the outputs and every carried buffer (the running
statistics) after each. Forward hooks on both sides find the first layer, in forward order, where
the two models part.

It only runs a model the migration converted completely: a migrated file that still references torch
or has error findings is named with what is left, and nothing runs. It executes the source (both
versions) as a module named other than ``__main__``, so a ``__main__`` block does not run.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import itertools
import math
import os
import sys
import time
import types
from dataclasses import dataclass, field, replace
from typing import Any

from ..engine import migrate_source
from ..facts.references import is_torch, torch_references
from ..facts.scopes import Index
from ..model import Config, MigrationError, MigrationResult
from ..ruleset import RuleSet, rules_of
from .compare import Comparison, Tolerance, compare_arrays
from .frameworks import Frameworks, load_frameworks
from ..project_model import ProjectFiles, imported, needed_files, project_imports, written_tree
from .harness import sample_array

PASS, FAIL, ERROR = "PASS", "FAIL", "ERROR"
EXIT_CODES = {PASS: 0, FAIL: 1, ERROR: 2}
DEFAULT_STEPS = 3
# Layers whose training-mode output is random: their masks cannot be the same under two frameworks,
# so during the training steps they run as in inference on both sides (the rest stays in training).
RANDOM_IN_TRAINING = ("torch.nn.Dropout", "torch.nn.Dropout1d", "torch.nn.Dropout2d", "torch.nn.Dropout3d",
                      "torch.nn.AlphaDropout", "torch.nn.FeatureAlphaDropout", "torch.nn.RReLU")
# The torch weights are moved off their initial values before they are carried across, so that a
# parameter the mapping swaps or misses shows even where the initial values coincide (weight 1,
# bias 0, running_var 1): each tensor t becomes t * U(0.75, 1.25) + U(-0.1, 0.1) * rms(t) (rms 1
# for a tensor of zeros), which keeps the sign of every value and variances positive.
PERTURB_SEED = 2024
PERTURB_SCALE = (0.75, 1.25)
PERTURB_SHIFT = 0.1
MISMATCHES_SHOWN = 12  # keys that do not fit, in the text of the reason
_modules = itertools.count()


@dataclass(frozen=True)
class Leftover:
    """Something the migration did not convert: an error finding (at its place in the original) or a
    torch reference still in the migrated code (at its place there)."""

    kind: str  # "finding" | "torch"
    line: int
    column: int
    text: str  # the finding's code and message, or the torch name
    where: str = "original"  # "original" | "migrated": which source ``line`` counts in
    file: str | None = None  # the migrated file, when it was given

    def describe(self) -> str:
        if self.where == "original":
            return f"line {self.line}: {self.text}"
        return f"line {self.line} of {self.file or 'the migrated code'}: {self.text}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "line": self.line, "column": self.column, "text": self.text, "where": self.where,
                "file": self.file}


@dataclass
class LayerDivergence:
    """The first layer, in the order the torch model's layers finish their forward pass, whose
    output (or carried buffer) differs beyond tolerance."""

    phase: str  # "train 1".."train K", "eval"
    layer: str  # the module's path in the torch model; "" is the model itself
    call: int  # which call of the layer in that pass (a layer used twice), from 1
    torch_class: str
    mindspore_class: str
    comparison: Comparison
    # The layer's input already differed: the difference comes from the code that computed it,
    # in the forward of ``parent`` before the call.
    input_differs: Comparison | None = None

    @property
    def parent(self) -> str:
        return self.layer.rpartition(".")[0]

    def describe(self) -> str:
        name = self.layer or "the model itself"
        call = f" (call {self.call})" if self.call > 1 else ""
        c = self.comparison
        text = (f"{self.phase}: {name}{call} ({self.torch_class} -> {self.mindspore_class}): {c.quantity} "
                f"max abs {_number(c.max_abs)}, max rel {_number(c.max_rel)}" + (f" ({c.detail})" if c.detail else ""))
        if self.input_differs is not None:
            owner = self.parent or "the model"
            text += (f"; its input already differs (max abs {_number(self.input_differs.max_abs)}): the difference "
                     f"arises in the forward of {owner}, before this call")
        return text

    def to_dict(self) -> dict:
        return {"phase": self.phase, "layer": self.layer, "call": self.call, "torch_class": self.torch_class,
                "mindspore_class": self.mindspore_class, "comparison": self.comparison.to_dict(),
                "input_differs": self.input_differs.to_dict() if self.input_differs else None}


@dataclass
class ModelCheck:
    """The verdict on one model: PASS, FAIL (the models differ, or the migrated one does not run or
    does not take the weights) or ERROR (nothing could be compared: the migration is not complete,
    the original does not run, ...; ``left`` names what the migration left)."""

    path: str | None
    model: str
    input_shape: tuple[int, ...]
    steps: int
    tolerance: Tolerance
    migrated_path: str | None = None  # the migrated file, when it was given (else: the migration in memory)
    status: str = ERROR
    reason: str = ""
    left: list[Leftover] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)  # outputs and statistics, every phase
    divergence: LayerDivergence | None = None
    layers: list[str] = field(default_factory=list)  # paired by name and compared, in forward order
    unpaired: list[str] = field(default_factory=list)  # torch layers with no MindSpore cell at their path
    statistics: list[str] = field(default_factory=list)  # the carried buffers compared after each pass
    kept_initial: list[str] = field(default_factory=list)  # MindSpore parameters with no torch counterpart
    held_in_inference: list[str] = field(default_factory=list)  # random layers, during the training steps
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def failed(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def largest(self) -> list[tuple[str, float, float, bool]]:
        """(quantity, largest absolute difference, largest relative difference, passed every time)
        per output and per statistic, over every phase, in the order first compared."""
        out: dict[str, list] = {}
        for c in self.comparisons:
            row = out.setdefault(c.quantity, [c.quantity, 0.0, 0.0, True])
            row[1], row[2], row[3] = max(row[1], c.max_abs), max(row[2], c.max_rel), row[3] and c.passed
        return [tuple(row) for row in out.values()]

    def to_dict(self) -> dict:
        return {
            "path": self.path, "migrated_path": self.migrated_path, "model": self.model,
            "input_shape": list(self.input_shape), "steps": self.steps,
            "tolerance": {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol},
            "status": self.status, "reason": self.reason, "left": [x.to_dict() for x in self.left],
            "largest": [{"quantity": q, "max_abs": _finite(a), "max_rel": _finite(r), "passed": ok}
                        for q, a, r, ok in self.largest()],
            "divergence": self.divergence.to_dict() if self.divergence else None,
            "layers": self.layers, "unpaired": self.unpaired, "statistics": self.statistics,
            "kept_initial": self.kept_initial, "held_in_inference": self.held_in_inference,
            "warnings": self.warnings, "seconds": round(self.seconds, 3),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


class _Stop(Exception):
    """The check ends here with ``status`` (FAIL or ERROR) and this message."""

    def __init__(self, status: str, message: str, left: list[Leftover] | None = None):
        super().__init__(message)
        self.status, self.left = status, left or []


def verify_model(source: str, *, path: str | None = None, model: str, input_shape: tuple[int, ...],
                 migrated: str | None = None, migrated_path: str | None = None, steps: int = DEFAULT_STEPS,
                 tolerance: Tolerance = Tolerance(), config: Config | None = None,
                 frameworks: Frameworks | None = None) -> ModelCheck:
    """Check the model ``model`` (``'Net(3, depth=2)'``: the class and its constructor's arguments as
    Python literals) of the torch ``source`` against its MindSpore counterpart: ``migrate_source``'s
    migration of it, or ``migrated`` (a migrated file, edited by hand, say). ``input_shape``: the
    shape of the float32 batches. Raises FrameworksMissing without torch/MindSpore; every other
    problem is in the result (status ERROR)."""
    from ..ckpt.check import ModelSpec

    start = time.perf_counter()
    check = ModelCheck(path, model, tuple(input_shape), steps, tolerance, migrated_path)
    fw = frameworks or load_frameworks()
    config = config or Config()
    try:
        try:
            spec = ModelSpec.parse(model)
        except ValueError as exc:
            raise _Stop(ERROR, f"--model: {exc}") from None
        check.model = str(spec)
        if not input_shape or any(int(d) <= 0 for d in input_shape):
            raise _Stop(ERROR, f"the input shape must be positive sizes, not {tuple(input_shape)}")
        code = _migrated_code(source, path, migrated, migrated_path, config, check)
        _ModelRun(fw, spec, check, rules_of(config)).run(source, code)
    except _Stop as stop:
        check.status, check.reason, check.left = stop.status, str(stop), stop.left
    check.seconds = time.perf_counter() - start
    return check


# -- what runs: only a complete migration ------------------------------------------------------------


def _migrated_code(source: str, path: str | None, migrated: str | None, migrated_path: str | None,
                   config: Config, check: ModelCheck) -> str:
    """The MindSpore code of the model's file, refused (ERROR) while anything is left unconverted."""
    rules = rules_of(config)
    try:
        original_tree = _parse(source)
    except SyntaxError as exc:
        raise _Stop(ERROR, f"the original does not parse: line {exc.lineno}: {exc.msg}") from None
    if migrated is None:
        try:
            # Without markers, the lines left unconverted stay as they were: what is left is named
            # by its line in the original.
            migration = migrate_source(source, path=path, config=dataclasses.replace(config, markers=False))
        except MigrationError as exc:
            raise _Stop(ERROR, str(exc)) from None
        check.warnings.extend(f"line {f.line}: {f.code} {f.message}" for f in migration.findings
                              if f.severity == "warning")
        code, where = migration.code, "the migration"
        left = unconverted(migration)
    else:
        code, where = migrated, migrated_path or "the migrated source"
        left = []
    try:
        left += torch_left(code, rules, source if migrated is None else None, migrated_path)
    except SyntaxError as exc:
        raise _Stop(ERROR, f"{where} does not parse: line {exc.lineno}: {exc.msg}") from None
    left.sort(key=_place)
    if left:
        raise _Stop(ERROR, f"{where} is not complete, so the model is not run: {len(left)} thing(s) left "
                           f"unconverted, the first: {left[0].describe()}", left)
    imports = project_imports(original_tree, path, config.project)
    if imports:
        files = needed_files(path, config.project) if migrated is None and config.project is not None and path \
            else None
        if files is None:
            raise _Stop(ERROR, f"the model's file imports {', '.join(imports)} from its project: the whole-model "
                               "check of a migration given with --against runs that one file, so the model and the "
                               "layers it builds must be defined in it")
        return _migrated_project(files, path, code, config, check)
    return code


@dataclass
class _MigratedProject:
    """The model's file and the project files it imports, each migrated."""

    files: ProjectFiles
    codes: dict[str, str]  # absolute path -> migrated text


def _migrated_project(files: ProjectFiles, path: str, code: str, config: Config, check: ModelCheck) -> _MigratedProject:
    """Every file the model's file imports from its project, migrated with the project's knowledge;
    refused (ERROR) while anything in any of them is left unconverted."""
    rules = rules_of(config)
    model_file = os.path.abspath(path)
    codes = {model_file: code}
    left: list[Leftover] = []
    quiet = dataclasses.replace(config, markers=False)
    for file in files.files:
        if file == model_file:
            continue
        rel = files.relative(file)
        text = config.project.text(file)
        if text is None:
            raise _Stop(ERROR, f"cannot read {rel}, which the model's file imports")
        try:
            migration = migrate_source(text, path=file, config=quiet)
            codes[file] = migration.code
            check.warnings.extend(f"{rel}: line {f.line}: {f.code} {f.message}" for f in migration.findings
                                  if f.severity == "warning")
            left += [replace(x, text=f"{rel}: {x.text}") for x in unconverted(migration)]
            left += [replace(x, text=f"{rel}: {x.text}") if x.where == "original" else x
                     for x in torch_left(migration.code, rules, text, rel)]
        except (MigrationError, SyntaxError) as exc:
            raise _Stop(ERROR, f"{rel}, which the model's file imports, cannot be migrated: {exc}") from None
    if left:
        raise _Stop(ERROR, f"the project files the model imports are not completely migrated, so the model is not "
                           f"run: {len(left)} thing(s) left unconverted, the first: {left[0].describe()}", left)
    return _MigratedProject(files, codes)


def unconverted(migration: MigrationResult) -> list[Leftover]:
    """The error findings of a migration: sites it left as they were."""
    return [Leftover("finding", f.line, f.column, f"{f.code} {f.message}") for f in migration.findings
            if f.severity == "error"]


def torch_left(code: str, rules: RuleSet, original: str | None = None, file: str | None = None) -> list[Leftover]:
    """Every torch import and every use of a torch name still in ``code`` (the file ``file``). With
    the ``original`` it was migrated from, each is placed on its line there when that line came
    through unchanged."""
    index = Index(_parse(code))
    known = rules.layers.keys() | rules.names.keys() | rules.dtypes.keys()
    refs, ambiguous, _ = torch_references(index, rules.canonical, known.__contains__)
    lines = _unchanged_lines(original, code) if original is not None else {}

    def leftover(node: ast.AST, text: str) -> Leftover:
        line = lines.get(node.lineno)
        if line is None:
            return Leftover("torch", node.lineno, node.col_offset, text, "migrated", file)
        return Leftover("torch", line, node.col_offset, text, "original")

    left = [leftover(b.stmt or b.node, f"import of {b.qual}") for b in index.imports if is_torch(b.qual)]
    left += [leftover(r.node, f"{ast.unparse(r.node)} ({r.qual})") for r in [*refs, *ambiguous]]
    return sorted(set(left), key=_place)


def _place(left: Leftover) -> tuple:
    return (left.where != "original", left.line, left.column, left.text)


def _unchanged_lines(original: str, code: str) -> dict[int, int]:
    """Line of ``code`` -> line of ``original``, for the lines the migration left as they were."""
    matcher = difflib.SequenceMatcher(None, original.splitlines(), code.splitlines(), autojunk=False)
    out = {}
    for tag, i1, _, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.update((j1 + k + 1, i1 + k + 1) for k in range(j2 - j1))
    return out


def _parse(source: str) -> ast.Module:
    return ast.parse(source.lstrip("\ufeff"))


# -- running both models ---------------------------------------------------------------------------


@dataclass
class _Call:
    """One call of one layer during a forward pass: its inputs and outputs as numpy arrays, by label."""

    layer: str
    number: int
    cls: str
    inputs: list[tuple[str, Any]]
    outputs: list[tuple[str, Any]]


class _Recorder:
    """Forward hooks on every layer of a model, recording each call in the order the calls finish."""

    def __init__(self, layers, arrays):
        self.calls: list[_Call] = []
        self._count: dict[str, int] = {}
        self._arrays = arrays
        self._handles = [layer.register_forward_hook(self._hook(name)) for name, layer in layers]

    def _hook(self, name: str):
        def record(layer, args, output):
            number = self._count[name] = self._count.get(name, 0) + 1
            self.calls.append(_Call(name, number, type(layer).__name__, self._arrays(args, "input"),
                                    self._arrays(output, "output")))
        return record

    def reset(self) -> None:
        self.calls, self._count = [], {}

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


class _ModelRun:
    def __init__(self, fw: Frameworks, spec, check: ModelCheck, rules: RuleSet):
        self.fw, self.spec, self.check, self.rules = fw, spec, check, rules
        self.torch, self.ms, self.np = fw.torch, fw.mindspore, fw.numpy
        self.tolerance = check.tolerance
        self._first: dict[bool, LayerDivergence | None] = {True: None, False: None}  # by RMS, element-wise

    def run(self, original: str, migrated: str) -> None:
        registered: list[str] = []
        mode = self.ms.get_context("mode")
        recorders: list[_Recorder] = []
        try:
            with contextlib.redirect_stdout(sys.stderr):  # what the user's code prints must not break --json
                if isinstance(migrated, _MigratedProject):
                    model, net = self._build_project(migrated)
                else:
                    model = self._build(self._execute(original, "torch", registered), "torch")
                    net = self._build(self._execute(migrated, "mindspore", registered), "mindspore")
                if self.ms.get_context("mode") != self.ms.PYNATIVE_MODE:
                    self.ms.set_context(mode=self.ms.PYNATIVE_MODE)
                    self.check.warnings.append("the migrated source switches MindSpore to graph mode; the check "
                                               "runs in PyNative mode, where layers can be hooked")
                carried = self._carry(model, net)
                torch_layers = list(model.named_modules())
                ms_cells = dict(_cells_by_path(net))
                recorders = [_Recorder(torch_layers, self._torch_arrays),
                             _Recorder(list(ms_cells.items()), self._ms_arrays)]
                self._protocol(model, net, carried, torch_layers, ms_cells, recorders)
        finally:
            for recorder in recorders:
                recorder.remove()
            for name in registered:
                sys.modules.pop(name, None)
            if self.ms.get_context("mode") != mode:
                self.ms.set_context(mode=mode)

    # -- building --------------------------------------------------------------------------------

    def _execute(self, code: str, framework: str, registered: list[str]) -> types.ModuleType:
        """Run ``code`` as a fresh module, registered in sys.modules while the check runs (dataclasses
        and the like look their module up)."""
        name = f"_torch2ms_model_{framework}_{next(_modules)}"
        module = types.ModuleType(name)
        module.__file__ = self.check.path if framework == "torch" else (self.check.migrated_path or self.check.path)
        sys.modules[name] = module
        registered.append(name)
        try:
            exec(compile(code, module.__file__ or "<source>", "exec"), module.__dict__)  # the user's model file
        except Exception as exc:  # the user's code, any error
            if framework == "torch":
                raise _Stop(ERROR, f"the original source fails to run under torch: {_error(exc)}") from None
            raise _Stop(FAIL, f"the migrated source fails to run under MindSpore: {_error(exc)}") from None
        return module

    def _build_project(self, migrated: _MigratedProject):
        """Both models of a model whose file imports from its project: each tree imported as the
        packages it is (the original where it lies, the migration from a temporary copy)."""
        files = migrated.files
        built = []
        for framework in ("torch", "mindspore"):
            with contextlib.ExitStack() as stack:
                base = files.base
                if framework == "mindspore":
                    base = stack.enter_context(written_tree(files, migrated.codes))
                try:
                    module = stack.enter_context(imported(base, files.module, files.tops))
                except Exception as exc:  # the user's code, any error
                    if framework == "torch":
                        raise _Stop(ERROR, f"importing {files.module} fails under torch: {_error(exc)}") from None
                    raise _Stop(FAIL, f"importing the migrated {files.module} fails under MindSpore: "
                                      f"{_error(exc)}") from None
                built.append(self._build(module, framework))
        return built[0], built[1]

    def _build(self, module: types.ModuleType, framework: str):
        spec = self.spec
        factory = getattr(module, spec.name, None)  # a class, or a function building the model (ResNet18())
        side = "original" if framework == "torch" else "migrated"
        if not callable(factory):
            raise _Stop(ERROR, f"the {side} source defines no class or function {spec.name!r} at module level")
        try:
            built = factory(*spec.args, **spec.kwargs)
        except Exception as exc:  # the user's constructor, any error
            if framework == "torch":
                raise _Stop(ERROR, f"building the torch model {spec} fails: {_error(exc)}") from None
            raise _Stop(FAIL, f"building the migrated model {spec} fails under MindSpore: {_error(exc)}") from None
        base = self.torch.nn.Module if framework == "torch" else self.ms.nn.Cell
        if not isinstance(built, base):
            status = ERROR if framework == "torch" else FAIL
            raise _Stop(status, f"{spec} in the {side} source is a {type(built).__name__}, not a {base.__module__}."
                                f"{base.__name__}")
        return built

    def _carry(self, model, net) -> dict[str, Any]:
        """Move the torch weights off their initial values, then copy them into the MindSpore model
        through convert-ckpt's key mapping onto the built model's parameters. Returns the MindSpore
        parameter each torch key went to."""
        from ..ckpt.check import cell_layout
        from ..ckpt.frameworks import to_mindspore
        from ..ckpt.keys import plan_from_cell

        state = model.state_dict()
        self._perturb(state)
        layout = cell_layout(net, self.rules, str(self.spec))
        plan = plan_from_cell(list(state), {k: tuple(v.shape) for k, v in state.items()}, layout)
        if plan.mismatches:
            shown = "; ".join(f"{k}: {why}" for k, why in plan.mismatches[:MISMATCHES_SHOWN])
            raise _Stop(FAIL, f"the torch weights do not fit the migrated model: {len(plan.mismatches)} key(s) have no "
                              f"place in it: {shown}")
        collisions = plan.collisions()
        if collisions:
            new, old = collisions[0]
            raise _Stop(FAIL, f"the torch weights cannot be carried across: {' and '.join(old)} both map to the "
                              f"MindSpore parameter {new}")
        by_name: dict[str, list] = {}
        for _, param in net.parameters_and_names():
            by_name.setdefault(param.name, []).append(param)
        carried = {}
        for move in plan.moves:
            if move.new is None:
                continue  # no counterpart (num_batches_tracked): the plan says why
            targets = by_name.get(move.new, [])
            if len(targets) != 1:
                raise _Stop(FAIL, f"the torch weight {move.key} maps to {move.new}, which names "
                                  f"{len(targets)} parameters of the migrated model")
            try:
                targets[0].set_data(to_mindspore(state[move.key], move.layout))
            except Exception as exc:  # MindSpore refuses the value (dtype, ...)
                raise _Stop(FAIL, f"the torch weight {move.key} cannot be copied into {move.new}: {_error(exc)}") from None
            carried[move.key] = targets[0]
        given = {id(p) for p in carried.values()}
        self.check.kept_initial = [p.name for _, p in net.parameters_and_names() if id(p) not in given]
        return carried

    def _perturb(self, state: dict) -> None:
        torch, np = self.torch, self.np
        rng = np.random.default_rng(PERTURB_SEED)
        with torch.no_grad():
            for key in sorted(state):
                tensor = state[key]
                if not tensor.is_floating_point() or tensor.numel() == 0:
                    continue
                values = tensor.detach().cpu().double().numpy()
                rms = float(np.sqrt(np.mean(values ** 2))) or 1.0
                scale = rng.uniform(*PERTURB_SCALE, values.shape)
                shift = rng.uniform(-PERTURB_SHIFT, PERTURB_SHIFT, values.shape) * rms
                tensor.copy_(torch.from_numpy(values * scale + shift).to(tensor.dtype))

    # -- the protocol ------------------------------------------------------------------------------

    def _protocol(self, model, net, carried: dict[str, Any], torch_layers, ms_cells, recorders) -> None:
        buffers = {name for name, _ in model.named_buffers()}
        statistics = [k for k in carried if k in buffers]
        self.check.statistics = [self._statistic_name(k, carried[k].name) for k in statistics]
        random_layers = self._random_layers(torch_layers)
        self.check.held_in_inference = [name for name, _ in random_layers]

        model.train()
        net.set_train(True)
        for name, layer in random_layers:
            layer.eval()
            if name in ms_cells:
                ms_cells[name].set_train(False)
            else:
                self.check.warnings.append(f"{name}: no MindSpore cell at this path, so its randomness in training "
                                           "cannot be held: expect it to differ in the training steps")
        phases = [(f"train {k}", k) for k in range(1, self.check.steps + 1)]
        for phase, seed in [*phases, ("eval", self.check.steps + 1)]:
            if phase == "eval":
                model.eval()
                net.set_train(False)
            for recorder in recorders:
                recorder.reset()
            # mean 0.5, variance 4: running statistics move away from their initial values
            batch = (sample_array(*self.check.input_shape, seed=seed) * 2.0 + 0.5).astype("float32")
            expected, actual = self._forward(phase, model, net, batch)
            self._compare_outputs(phase, expected, actual)
            stats = {}
            for key in statistics:
                stats[key] = compare_arrays(phase, self._statistic_name(key, carried[key].name),
                                            _torch_numpy(model.get_buffer(key)), carried[key].asnumpy(),
                                            self.tolerance)
                self.check.comparisons.append(stats[key])
            failed = any(not c.passed for c in self.check.comparisons if c.phase == phase)
            self._locate(phase, recorders, stats, ms_cells, failed)
        self.check.status = FAIL if self.check.failed else PASS
        self.check.divergence = self._divergence()
        if self.check.failed:
            first = self.check.failed[0]
            self.check.reason = (f"{first.phase}: {first.quantity} differs: max abs {_number(first.max_abs)}, "
                                 f"max rel {_number(first.max_rel)}" + (f" ({first.detail})" if first.detail else ""))

    def _random_layers(self, torch_layers) -> list[tuple[str, Any]]:
        classes = []
        for name in RANDOM_IN_TRAINING:
            try:
                classes.append(self.fw.resolve(name))
            except (ImportError, AttributeError):
                continue  # not in this torch
        return [(name, layer) for name, layer in torch_layers if isinstance(layer, tuple(classes))]

    def _forward(self, phase: str, model, net, batch) -> tuple[list, list]:
        shape = self.check.input_shape
        try:
            with self.torch.no_grad():
                expected = self._torch_arrays(model(self.torch.from_numpy(batch.copy())), "output")
        except Exception as exc:  # the user's model, any error
            raise _Stop(ERROR, f"{phase}: the torch model fails on an input of shape {shape}: {_error(exc)}") from None
        try:
            actual = self._ms_arrays(net(self.ms.Tensor(batch.copy())), "output")
        except Exception as exc:
            raise _Stop(FAIL, f"{phase}: the migrated model fails under MindSpore on an input of shape {shape}: "
                              f"{_error(exc)}") from None
        if not expected:
            raise _Stop(ERROR, f"the torch model {self.spec} returns no tensor")
        return expected, actual

    def _compare_outputs(self, phase: str, expected: list, actual: list) -> None:
        self.check.comparisons.extend(self._compare(phase, expected, actual))

    def _compare(self, phase: str, expected: list, actual: list, by_rms: bool = False) -> list[Comparison]:
        """Arrays compared by label (``output[1]``, ``output['logits']``), element by element; a
        label on one side only is a difference. ``by_rms``: only the arrays that differ by their RMS
        difference (see ``_rms_difference``)."""
        got = dict(actual)
        out = []
        for label, value in expected:
            if label not in got:
                out.append(Comparison(phase, label, math.inf, math.inf, False, "no such tensor under MindSpore"))
                continue
            tolerance = self.tolerance.for_dtype(str(value.dtype))
            if by_rms:
                difference = _rms_difference(phase, label, value, got[label], tolerance)
                out.extend([difference] if difference is not None else [])
            else:
                out.append(compare_arrays(phase, label, value, got[label], tolerance))
        labels = {label for label, _ in expected}
        out.extend(Comparison(phase, label, math.inf, math.inf, False, "no such tensor under torch")
                   for label, _ in actual if label not in labels)
        return out

    def _locate(self, phase: str, recorders, stats: dict[str, Comparison], ms_cells, failed: bool) -> None:
        """Pair the layers' calls by path and call number, and find the first layer (in the order
        the torch calls finish) whose output or carried buffers differ: by the RMS difference of
        each output, and, in a pass whose outputs or buffers ``failed``, element by element (see
        ``_divergence``)."""
        torch_calls, ms_calls = recorders[0].calls, recorders[1].calls
        by_key = {(c.layer, c.number): c for c in ms_calls}
        stats_by_layer: dict[str, list[Comparison]] = {}
        for key, comparison in stats.items():
            stats_by_layer.setdefault(key.rpartition(".")[0], []).append(comparison)
        wanted = [by_rms for by_rms, found in self._first.items() if found is None and (by_rms or failed)]
        for call in torch_calls:
            counterpart = by_key.get((call.layer, call.number))
            if counterpart is None:
                if call.layer not in self.check.unpaired and call.layer not in ms_cells:
                    self.check.unpaired.append(call.layer)
                continue
            if call.layer not in self.check.layers:
                self.check.layers.append(call.layer)
            statistics = [c for c in stats_by_layer.get(call.layer, []) if not c.passed] if call.number == 1 else []
            for by_rms in list(wanted):
                differing = [c for c in self._compare(phase, call.outputs, counterpart.outputs, by_rms)
                             if not c.passed] + statistics
                if differing:
                    inputs = [c for c in self._compare(phase, call.inputs, counterpart.inputs, by_rms) if not c.passed]
                    self._first[by_rms] = LayerDivergence(phase, call.layer, call.number, call.cls, counterpart.cls,
                                                          differing[0], inputs[0] if inputs else None)
                    wanted.remove(by_rms)

    def _divergence(self) -> LayerDivergence | None:
        """The layer to name. A layer output's RMS difference is what says where the models part: a
        single element can differ beyond tolerance where a batch norm in training mode divides by a
        small batch's spread (the float32 noise of a deep CNN), and the outputs still agree. Element
        by element only when nothing differs by RMS and the check failed, so that a failure always
        names a layer."""
        found = self._first[True]
        if found is None and self.check.status == FAIL:
            found = self._first[False]
        return found

    # -- values ------------------------------------------------------------------------------------

    def _torch_arrays(self, value, label: str) -> list[tuple[str, Any]]:
        return _labelled(value, label, lambda v: _torch_numpy(v) if isinstance(v, self.torch.Tensor) else None)

    def _ms_arrays(self, value, label: str) -> list[tuple[str, Any]]:
        np = self.np
        return _labelled(value, label, lambda v: np.array(v.asnumpy()) if isinstance(v, self.ms.Tensor) else None)

    @staticmethod
    def _statistic_name(key: str, ms_name: str) -> str:
        """``stem.bn.running_mean/moving_mean``: the torch key, then the MindSpore name past their
        common module path."""
        module = key.rpartition(".")[0]
        tail = ms_name[len(module) + 1:] if module and ms_name.startswith(module + ".") else ms_name
        return f"{key}/{tail}"


def _cells_by_path(net) -> list[tuple[str, Any]]:
    """Every cell of a MindSpore model by its path, as torch's named_modules() lists modules:
    cells_and_names() leaves out the cells that are false, so an empty SequentialCell (the
    shortcut of a ResNet block that needs none) would have no counterpart."""
    out, seen = [], set()

    def walk(path: str, cell) -> None:
        if id(cell) in seen:
            return
        seen.add(id(cell))
        out.append((path, cell))
        for name, child in cell.name_cells().items():
            if child is not None:
                walk(f"{path}.{name}" if path else name, child)

    walk("", net)
    return out


def _rms_difference(phase: str, label: str, expected, actual, tolerance: Tolerance) -> Comparison | None:
    """None when RMS(actual - expected) <= atol + rtol * RMS(expected), the element-wise criterion in
    the mean; else the element-wise comparison, which says how far apart they are. Other shapes, or
    a NaN or infinity on one side only, differ."""
    import numpy as np

    if expected.shape == actual.shape and expected.size:
        e, a = expected.astype(np.float64), actual.astype(np.float64)
        if np.isfinite(e).all() and np.isfinite(a).all():
            rms_diff, rms_value = float(np.sqrt(np.mean((a - e) ** 2))), float(np.sqrt(np.mean(e ** 2)))
            if rms_diff <= tolerance.atol + tolerance.rtol * rms_value:
                return None
            comparison = compare_arrays(phase, label, expected, actual, tolerance)
            detail = f"RMS difference {_number(rms_diff)} for an RMS value of {_number(rms_value)}"
            return dataclasses.replace(comparison, passed=False, detail=detail)
    comparison = compare_arrays(phase, label, expected, actual, tolerance)
    return None if comparison.passed else comparison


def _labelled(value, label: str, to_array) -> list[tuple[str, Any]]:
    """Every tensor in a layer's inputs or outputs (a tensor, or tuples, lists and dicts of them), as
    (label, numpy array) pairs: ``output``, ``output[0]``, ``output['logits']``; the inputs of a
    call are ``input[0]``, ... Other values are left out."""
    if isinstance(value, (tuple, list)):
        if label == "input" and len(value) == 1:
            return _labelled(value[0], label, to_array)
        return [x for i, item in enumerate(value) for x in _labelled(item, f"{label}[{i}]", to_array)]
    if isinstance(value, dict):
        return [x for key, item in value.items() for x in _labelled(item, f"{label}[{key!r}]", to_array)]
    array = to_array(value)
    return [] if array is None else [(label, array)]


def _torch_numpy(tensor):
    # A copy: a later in-place operation (ReLU(inplace=True)) must not change what was recorded.
    return tensor.detach().cpu().numpy().copy()


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _number(value: float) -> str:
    return f"{value:.2g}"


def _finite(value: float):
    return value if math.isfinite(value) else str(value)
